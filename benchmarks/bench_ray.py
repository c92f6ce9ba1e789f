"""Benchmark of the study's execution backends: the same study on the local backend and on Ray.

The study: four registered tiny models (tiny-cnn, tiny-resnet, tiny-vgg, tiny-vit; random
weights) inverted at the penultimate layer on 24 digits from noise and from other digits, then
judged by pixel and SSIM (no survey). It runs

* ``local``: the local backend (every task in this process, one after the other), with
  torch's default threads and with one thread (what each Ray worker uses);
* ``ray``: a local Ray instance with ``--workers`` CPUs (one task per CPU): whole runs (one
  inversion task per model) on freshly started workers (they import torch and load each
  model first), the same again on warm workers, and chunked runs (``[tasks] targets =
  --chunk``),

checks that all of them wrote the same files, and reports for each: the wall time of the
invert and judge steps (Ray's start-up apart), the compute time summed over tasks (measured
inside each task), and the **overhead per task** = (wall x slots - summed compute) / tasks,
where slots is the number of tasks that can run at once (1 locally): time a slot spends on
anything but computing (scheduling, sending arguments and results, starting workers and
loading models, and waiting at the end for the slowest task). A no-op task round trip is
timed too. Each figure is one measurement (the study is the unit); on a busy machine run it
when the machine is idle.

Run ``python benchmarks/bench_ray.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from percalign.execution.backends import Backend, TaskProgress

MODELS = ("tiny-cnn", "tiny-resnet", "tiny-vgg", "tiny-vit")

SPEC = """
[study]
name = "bench: four tiny models on digits"

{models}
[images]
n = {n}
null_images = 64

[inversion]
seeds = "super-noise,image"
steps = {steps}
batch_size = {batch}

[judges]
names = ["pixel", "ssim"]

[survey]
enabled = false

[tasks]
targets = {chunk}
"""


@dataclass
class Figures:
    """One backend's run of the study."""

    name: str
    slots: int
    tasks: int
    wall_s: float
    compute_s: float
    start_s: float = 0.0

    @property
    def overhead_per_task_s(self) -> float:
        return (self.wall_s * self.slots - self.compute_s) / self.tasks


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted((folder / "runs").rglob("*")):
        if path.suffix == ".png" or path.name == "judgments.csv":
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _spec(args: argparse.Namespace, folder: Path, chunk: int) -> Path:
    folder.mkdir(parents=True)
    models = "".join(f'[[models]]\nname = "{m}"\n\n' for m in args.models)
    text = SPEC.format(models=models, n=args.n, steps=args.steps, batch=args.batch, chunk=chunk)
    (folder / "study.toml").write_text(text)
    return folder / "study.toml"


def _run(name: str, spec_path: Path, backend: Backend, slots: int) -> tuple[Figures, str]:
    """Run the study; its figures (walls of the task steps) and the digest of its files."""
    from percalign.study.pipeline import run_study
    from percalign.study.spec import load_spec

    events: list[TaskProgress] = []
    marks: dict[str, list[float]] = {}

    def on_task(event: TaskProgress) -> None:
        events.append(event)
        marks.setdefault(event.step, []).append(time.perf_counter())

    run_study(
        load_spec(spec_path),
        spec_path.parent,
        log=lambda _m: None,
        backend=backend,
        on_task=on_task,
    )
    finished = [e for e in events if e.done > 0]
    wall = sum(t[-1] - t[0] for t in marks.values())
    compute = sum(e.seconds for e in finished)
    return Figures(name, slots, len(finished), wall, compute), _digest(spec_path.parent)


def _noop() -> int:
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--n", type=int, default=24, help="targets (default 24)")
    parser.add_argument("--steps", type=int, default=200, help="inversion steps (default 200)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--chunk", type=int, default=8, help="targets per chunked task")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the Ray instance")
    parser.add_argument("--quick", action="store_true", help="smoke test: 8 targets, 20 steps")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.steps, args.chunk = 8, 20, 4

    import ray
    import torch

    from percalign.execution.backends import LocalBackend, RayBackend

    console = Console(highlight=False)
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    results: list[Figures] = []
    digests: dict[str, str] = {}
    try:
        threads = torch.get_num_threads()
        fig, digests["local"] = _run(
            f"local ({threads} threads)", _spec(args, work / "local", 0), LocalBackend(), 1
        )
        results.append(fig)
        torch.set_num_threads(1)
        fig, digests["local-1"] = _run(
            "local (1 thread)", _spec(args, work / "local1", 0), LocalBackend(), 1
        )
        results.append(fig)
        torch.set_num_threads(threads)

        started = time.perf_counter()
        ray.init(
            address="local",
            num_cpus=args.workers,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=str(work / "ray"),
        )
        start_s = time.perf_counter() - started
        runs = (
            ("whole runs, cold workers", 0),
            ("whole runs", 0),
            (f"chunks of {args.chunk} targets", args.chunk),
        )
        for i, (label, chunk) in enumerate(runs):
            folder = work / f"ray-{i}"
            fig, digests[f"ray-{i}"] = _run(
                f"ray, {args.workers} workers, {label}",
                _spec(args, folder, chunk),
                RayBackend(),
                args.workers,
            )
            fig.start_s = start_s
            results.append(fig)
        remote = ray.remote(num_cpus=1)(_noop)
        ray.get([remote.remote() for _ in range(20)])  # warm
        started = time.perf_counter()
        ray.get([remote.remote() for _ in range(200)])
        noop_ms = (time.perf_counter() - started) / 200 * 1000 * args.workers
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    same = len(set(digests.values())) == 1
    table = Table(title=f"{len(args.models)} models, {args.n} digits, {args.steps} steps")
    for col in ("backend", "tasks", "wall s", "compute s", "overhead/task s", "speedup"):
        table.add_column(col, justify="right" if col != "backend" else "left")
    base = results[0].wall_s
    for r in results:
        table.add_row(
            r.name,
            str(r.tasks),
            f"{r.wall_s:.1f}",
            f"{r.compute_s:.1f}",
            f"{r.overhead_per_task_s:.2f}",
            f"{base / r.wall_s:.2f}x",
        )
    console.print(table)
    console.print(
        f"Ray start-up (not in the walls): {start_s:.1f} s; no-op task round trip: "
        f"{noop_ms:.1f} ms per task and worker. Outputs identical on every backend: {same}."
    )
    console.print(f"{platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "runs": [
                        {**asdict(r), "overhead_per_task_s": r.overhead_per_task_s} for r in results
                    ],
                    "ray_start_s": start_s,
                    "noop_ms": noop_ms,
                    "identical": same,
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                indent=1,
            )
        )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
