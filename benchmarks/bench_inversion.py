"""Benchmark of the inversion engine, reported as ratios against hand-written loops.

For each model it measures, in one run, the time per inversion step of

* ``bare``: a forward pass of the truncated model (``model.extractor(["penultimate"])``) and a
  backward pass to the input, nothing else;
* ``engine``: ``percalign.invert`` at the penultimate layer (regularizer-free loss,
  normalized-gd, super-noise seeds); its per-step time is the difference between a long and a
  short run divided by the difference in steps, so fixed costs (seeds, target features, the
  final 8-bit evaluation) cancel;
* ``authors``: a loop written like the original authors' code: the full model to the logits
  with weight gradients enabled, the penultimate features read by a hook on the classifier
  head, ``loss.backward()``, then the normalized gradient step and clamp in pixel space;
* ``engine-early``: ``percalign.invert`` at an early layer (the engine stops the forward pass
  there);
* ``full-early``: the same early-layer loss and step with a forward pass to the logits (no
  truncation; the layer is read by a hook),

* ``engine-folded`` / ``engine-folded-cl``: the engine stepping a copy of the network with
  its batch norms folded into its convolutions (the default of ``InversionConfig``), and
  that copy channels-last too,

and reports these ratios:

* overhead   = engine / bare              (aim: <= 1.15)
* speedup    = authors / engine
* truncation = full-early / engine-early
* folding    = engine-folded / engine, and folding_channels_last (below 1: faster)

Each time is the median over repeats; the measurements are interleaved round-robin so that
slow drifts of the machine affect them all alike. Slowdowns from other processes only ever add
time, so the ratios of the fastest repeats ("min") are printed too: on a busy machine they are
the better estimate.

Run ``python benchmarks/bench_inversion.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

import percalign as pa
from percalign.models.model import Model

LR = 1.0  # the paper's step size for the normalized gradient step
DEFAULT_REPEATS = 5
QUICK_REPEATS = 2
DEFAULT_WARMUP = 3
BUSY_SPREAD = 1.5  # slowest / fastest repeat above which the machine is reported busy
Stat = Callable[[Sequence[float]], float]
STATS: dict[str, Stat] = {"median": statistics.median, "min": min}


@dataclass(frozen=True)
class Case:
    """A model to benchmark, its early layer, and the step counts that keep its run short."""

    name: str
    early_layer: str
    steps: int
    quick_steps: int
    load_kwargs: dict[str, Any] = field(default_factory=dict)

    def load(self, device: torch.device) -> Model:
        return pa.models.load(self.name, device=device, **self.load_kwargs)


CASES = {
    case.name: case
    for case in (
        Case(
            "resnet18",
            "layer1",
            steps=20,
            quick_steps=4,
            load_kwargs={"weights": "none", "image_size": 64},
        ),
        Case("tiny-cnn", "block1", steps=100, quick_steps=10),
    )
}


# -- timing ------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, with the device synchronized before and after."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


class Measurement(Protocol):
    """Something whose time per inversion step is sampled repeatedly."""

    key: str
    label: str
    layer: str

    def warm_up(self) -> None: ...

    def sample(self) -> None:
        """Time one more repeat."""
        ...

    def per_step(self, stat: Stat) -> float:
        """Seconds per step, from the repeats summarized by ``stat``."""
        ...

    def spread(self) -> float:
        """Slowest over fastest repeat (1.0 on a quiet machine)."""
        ...

    def raw(self) -> dict[str, list[float]]:
        """Every timing in seconds, by run kind."""
        ...


def _spread(times: Sequence[float]) -> float:
    return max(times) / min(times)


@dataclass
class LoopMeasurement:
    """A hand-written step function, timed over ``iters`` consecutive calls per repeat."""

    key: str
    label: str
    layer: str
    step: Callable[[], None]
    iters: int
    warmup: int
    device: torch.device
    times: list[float] = field(default_factory=list)

    def _loop(self, iters: int) -> None:
        for _ in range(iters):
            self.step()

    def warm_up(self) -> None:
        _timed(lambda: self._loop(self.warmup), self.device)

    def sample(self) -> None:
        self.times.append(_timed(lambda: self._loop(self.iters), self.device))

    def per_step(self, stat: Stat) -> float:
        return stat(self.times) / self.iters

    def spread(self) -> float:
        return _spread(self.times)

    def raw(self) -> dict[str, list[float]]:
        return {"loop": self.times}


@dataclass
class InvertMeasurement:
    """``percalign.invert``: (time at ``long`` steps - time at ``short``) / (long - short)."""

    key: str
    label: str
    layer: str
    model: Model
    targets: torch.Tensor
    short: int
    long: int
    record_every: int
    #: InversionConfig settings; by default the bare loop's network (folding batch norms, the
    #: engine's default, is a speed-up of its own and is measured apart, not as overhead)
    options: dict[str, Any] = field(default_factory=lambda: {"fold_batchnorm": False})
    times: dict[int, list[float]] = field(default_factory=dict)

    def _run(self, steps: int) -> None:
        config = pa.InversionConfig(
            steps=steps,
            batch_size=len(self.targets),
            record_every=self.record_every,
            **self.options,
        )
        pa.invert(self.model, self.targets, layers=self.layer, seeds="super-noise", config=config)

    def warm_up(self) -> None:
        self._run(self.short)

    def sample(self) -> None:
        for steps in (self.short, self.long):
            elapsed = _timed(lambda s=steps: self._run(s), self.model.device)
            self.times.setdefault(steps, []).append(elapsed)

    def per_step(self, stat: Stat) -> float:
        # Each run length is summarized on its own, so a slow repeat of one does not pair up
        # with a fast repeat of the other.
        long, short = stat(self.times[self.long]), stat(self.times[self.short])
        return (long - short) / (self.long - self.short)

    def spread(self) -> float:
        return _spread(self.times[self.long])

    def raw(self) -> dict[str, list[float]]:
        return {f"steps={k}": v for k, v in self.times.items()}


# -- the hand-written loops ----------------------------------------------------------------------
class _Capture:
    """Keeps the latest input (or output) of one module, read by a forward hook."""

    def __init__(self, module: nn.Module, use_input: bool) -> None:
        self.use_input = use_input
        self.value: torch.Tensor | None = None
        module.register_forward_hook(self._hook)

    def _hook(self, _module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        self.value = args[0] if self.use_input else out


def hooked_features(
    model: Model, net: nn.Module, layer: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Features at ``layer`` read by a hook while ``net`` runs to its logits (no early stop)."""
    ref = model.resolve_layer(layer)
    capture = _Capture(net.get_submodule(ref.path), ref.use_input)

    def features(x: torch.Tensor) -> torch.Tensor:
        capture.value = None
        net(model.normalize(x))
        if capture.value is None:
            raise RuntimeError(f"layer {layer!r} did not run in the forward pass")
        return capture.value

    return features


def bare_step(model: Model, x: torch.Tensor) -> Callable[[], None]:
    """Forward through the truncated model to the penultimate layer and backward to ``x``."""
    fx = model.extractor(["penultimate"])

    def step() -> None:
        feats = fx(x)["penultimate"]
        loss = feats.flatten(1).norm(dim=1).sum()
        torch.autograd.grad(loss, x)

    return step


def pixel_step(
    features: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    x: torch.Tensor,
    weights: nn.Module | None = None,
) -> Callable[[], None]:
    """One normalized gradient step on ``x`` for the relative L2 distance to ``targets``' features.

    With ``weights`` given the gradient comes from ``loss.backward()``, which also fills the
    weight gradients of that module (as in the authors' code); otherwise from
    ``torch.autograd.grad`` to ``x`` alone.
    """
    with torch.no_grad():
        target = features(targets).flatten(1).clone()
    target_norm = target.norm(dim=1)

    def step() -> None:
        diff = features(x).flatten(1) - target
        loss = (diff.norm(dim=1) / target_norm).sum()
        if weights is not None:
            weights.zero_grad(set_to_none=True)
            loss.backward()
            grad, x.grad = x.grad, None
        else:
            (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            x.sub_(LR * grad / norm).clamp_(0, 1)

    return step


def measurements(
    case: Case, model: Model, batch: int, steps: int, warmup: int, record_every: int
) -> list[Measurement]:
    """The seven measurements of one model, sharing one batch of random target images."""
    device = model.device
    h, w = model.spec.input_size
    gen = torch.Generator().manual_seed(0)
    targets = torch.rand(batch, model.spec.in_chans, h, w, generator=gen).to(device)

    def start() -> torch.Tensor:
        seeds = torch.randn(targets.shape, generator=gen).clamp_(0, 1)  # super-noise
        return seeds.to(device).requires_grad_(True)

    def loop(key: str, label: str, layer: str, step: Callable[[], None]) -> LoopMeasurement:
        return LoopMeasurement(key, label, layer, step, steps, warmup, device)

    def engine(key: str, layer: str, label: str = "engine: pa.invert", **options: Any):
        short = max(1, steps // 5)
        measurement = InvertMeasurement(
            key, label, layer, model, targets, short, steps, record_every
        )
        measurement.options.update(options)
        return measurement

    trainable = copy.deepcopy(model.module).requires_grad_(True)
    authors = pixel_step(
        hooked_features(model, trainable, "penultimate"), targets, start(), weights=trainable
    )
    early = case.early_layer
    frozen = copy.deepcopy(model.module)  # hooks go on copies: the engine's module stays bare
    full_early = pixel_step(hooked_features(model, frozen, early), targets, start())
    return [
        loop("bare", "bare fwd+bwd, truncated", "penultimate", bare_step(model, start())),
        engine("engine", "penultimate"),
        loop("authors", "authors-style: full, weight grads", "penultimate", authors),
        engine("engine-early", early),
        loop("full-early", "full fwd, hook, no stop", early, full_early),
        engine("engine-folded", "penultimate", "engine, batch norms folded", fold_batchnorm=True),
        engine(
            "engine-folded-cl",
            "penultimate",
            "engine, folded + channels-last",
            fold_batchnorm=True,
            channels_last=True,
        ),
    ]


# -- one model -----------------------------------------------------------------------------------
RATIOS = {  # name -> (numerator, denominator), keys of measurements
    "overhead": ("engine", "bare"),
    "speedup": ("authors", "engine"),
    "truncation": ("full-early", "engine-early"),
    "early_vs_penultimate": ("engine-early", "engine"),
    "folding": ("engine-folded", "engine"),
    "folding_channels_last": ("engine-folded-cl", "engine"),
}
RATIO_ROW = {num: name for name, (num, _) in RATIOS.items()}  # shown on the numerator's row


@dataclass
class ModelResult:
    """Per-step times (seconds, by statistic and measurement) of one model, and their ratios."""

    model: str
    early_layer: str
    steps: int
    rows: list[tuple[str, str, str]]  # (key, label, layer)
    per_step: dict[str, dict[str, float]]  # stat -> key -> seconds
    spread: dict[str, float]
    raw: dict[str, dict[str, list[float]]]

    @classmethod
    def collect(cls, case: Case, steps: int, todo: Sequence[Measurement]) -> ModelResult:
        return cls(
            model=case.name,
            early_layer=case.early_layer,
            steps=steps,
            rows=[(m.key, m.label, m.layer) for m in todo],
            per_step={s: {m.key: m.per_step(fn) for m in todo} for s, fn in STATS.items()},
            spread={m.key: m.spread() for m in todo},
            raw={m.key: m.raw() for m in todo},
        )

    def ratios(self, stat: str = "median") -> dict[str, float]:
        t = self.per_step[stat]
        return {name: t[num] / t[den] for name, (num, den) in RATIOS.items()}

    @property
    def busy(self) -> bool:
        return max(self.spread.values()) > BUSY_SPREAD

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "early_layer": self.early_layer,
            "steps": self.steps,
            "ms_per_step": {
                s: {k: 1e3 * v for k, v in t.items()} for s, t in self.per_step.items()
            },
            "ratios": {s: self.ratios(s) for s in STATS},
            "spread": self.spread,
            "raw_s": self.raw,
        }


def run_case(
    case: Case,
    device: torch.device,
    batch: int,
    steps: int,
    repeats: int,
    warmup: int,
    record_every: int,
    console: Console,
) -> ModelResult:
    """Warm every measurement up, then sample them round-robin ``repeats`` times."""
    model = case.load(device)
    todo = measurements(case, model, batch, steps, warmup, record_every)
    with console.status(f"[bold]{case.name}[/]: warming up"):
        for m in todo:
            m.warm_up()
    for r in range(repeats):
        with console.status(f"[bold]{case.name}[/]: repeat {r + 1}/{repeats}"):
            for m in todo:
                m.sample()
    return ModelResult.collect(case, steps, todo)


# -- reporting -----------------------------------------------------------------------------------
def table(result: ModelResult, batch: int) -> Table:
    title = f"{result.model}, batch {batch}, {result.steps} steps: time per inversion step"
    out = Table(title=title, title_justify="left")
    columns = ("measurement", "layer", "median ms", "min ms", "spread", "ratio", "ratio (min)")
    for name in columns:
        out.add_column(name, justify="left" if name in columns[:2] else "right")
    median, fastest = result.ratios("median"), result.ratios("min")
    for key, label, layer in result.rows:
        name = RATIO_ROW.get(key)
        out.add_row(
            label,
            layer,
            f"{1e3 * result.per_step['median'][key]:.2f}",
            f"{1e3 * result.per_step['min'][key]:.2f}",
            f"{result.spread[key]:.2f}",
            f"{name} {median[name]:.2f}" if name else "",
            f"{fastest[name]:.2f}" if name else "",
        )
    return out


def summary_line(result: ModelResult) -> str:
    r, m = result.ratios("median"), result.ratios("min")
    return (
        f"{result.model}: overhead {r['overhead']:.3f}x (aim <= 1.15; min {m['overhead']:.3f}x)"
        f" | speedup vs authors-style {r['speedup']:.2f}x (min {m['speedup']:.2f}x)"
        f" | truncation saving at {result.early_layer} {r['truncation']:.2f}x"
        f" (min {m['truncation']:.2f}x)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Ratios: overhead = engine / bare, speedup = authors-style / engine, "
        "truncation = full forward / truncated engine at the early layer.",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument(
        "--models",
        default=",".join(CASES),
        help=f"comma-separated subset of (default all): {', '.join(CASES)}",
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"repeats per measurement (default {DEFAULT_REPEATS}; {QUICK_REPEATS} with --quick)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps of the long engine run and iterations per loop repeat (default per model: "
        + ", ".join(f"{c.name} {c.steps}" for c in CASES.values())
        + "); the short engine run takes steps // 5",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"warm-up iterations of each loop (default {DEFAULT_WARMUP}; 1 with --quick)",
    )
    p.add_argument(
        "--record-every",
        type=int,
        default=50,
        help="the engine's loss-curve cadence (default 50, its own at the paper's 5000 steps)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    p.add_argument("--quick", action="store_true", help="a very short run (smoke test)")
    p.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the results to PATH"
    )
    args = p.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in CASES]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {list(CASES)}")
    if args.steps is not None and args.steps < 2:
        p.error("--steps must be at least 2")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available on this machine; use --device cpu.")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    warmup = args.warmup or (1 if args.quick else DEFAULT_WARMUP)
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(
        f"torch {torch.__version__}, python {platform.python_version()}, device {device}, "
        f"threads {torch.get_num_threads()}, batch {args.batch_size}, repeats {repeats}, "
        f"record_every {args.record_every}"
    )
    started = time.perf_counter()
    results = []
    for name in args.models.split(","):
        case = CASES[name]
        steps = args.steps or (case.quick_steps if args.quick else case.steps)
        result = run_case(
            case, device, args.batch_size, steps, repeats, warmup, args.record_every, console
        )
        console.print(table(result, args.batch_size))
        if result.busy:
            console.print(
                f"[yellow]note:[/] repeats of {name} differ by more than {BUSY_SPREAD}x: the "
                "machine was busy; the (min) ratios are the better estimate."
            )
        results.append(result)
    for result in results:
        print(summary_line(result))
    elapsed = time.perf_counter() - started
    print(f"total wall time {elapsed:.1f} s")
    if args.json is not None:
        meta = {
            "torch": torch.__version__,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
            "repeats": repeats,
            "record_every": args.record_every,
            "quick": args.quick,
            "wall_s": elapsed,
        }
        payload = {"meta": meta, "models": [r.to_json() for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
