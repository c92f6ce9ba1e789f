"""The engine on an accelerator: throughput, overhead and memory per precision (``gpu.sh``).

For each case (ResNet-50 at 224 px, penultimate, batches 32 and 128; ViT-B/16 at 224 px,
CLS token, batch 128; each compiled graph costs about a minute, so ViT runs at one batch size
to stay within 5 minutes) and mode (``fp32``, ``bf16``,
``bf16+compile``) it measures

* ``engine``: image-steps/s of ``percalign.invert`` (the ``default`` preset's optimizer:
  sigmoid pixels, Adam; regularizer-free loss, super-noise seeds), timed between two
  progress reports inside one run, so that compiling, the targets' features and the final
  8-bit evaluation are left out;
* ``bare``: a forward pass of the truncated model to the layer and a backward pass to the
  input, in the same precision (and compiled the same way), nothing else;
* ``overhead`` = engine time / bare time per step (1.0: the engine adds nothing to the
  model's own forward and backward; the Adam update, best-iterate bookkeeping and the
  loss are the rest);
* ``peak``: the largest GPU memory allocated by the engine run (CUDA only).

Then one throughput line: valid IRIs per GPU-hour at the ``default`` preset (sigmoid pixels,
Adam 0.1, cosine, 1000 steps, batch 32, fp32, its seeds super-noise and image) on ResNet-50
with random weights at 224 px, inverting the 16 sample photographs, judged by the validity
gate (1st percentile of the distances between the photographs); the gate is defined for any
model, trained or not.

``--smoke`` runs the same code on tiny models and sizes on the CPU in about a minute (tests).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import percalign as pa
from percalign._device import describe, resolve_device
from percalign.inversion import InversionConfig
from percalign.inversion.acceleration import fast_features
from percalign.inversion.config import PRESETS
from percalign.inversion.validity import null_distribution

MODES = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+compile": ("bf16", True)}


@dataclass(frozen=True)
class Case:
    label: str
    model: str
    size: int
    layer: str
    batch: int


FULL = (
    Case("ResNet-50 penultimate", "resnet50", 224, "penultimate", 32),
    Case("ResNet-50 penultimate", "resnet50", 224, "penultimate", 128),
    Case("ViT-B/16 CLS", "vit_b_16", 224, "penultimate", 128),
)
#: ``--smoke``: the same code on the CPU in about a minute (compiling dominates).
SMOKE = (Case("tiny-cnn penultimate", "tiny-cnn", 32, "penultimate", 2),)


@dataclass
class Row:
    case: str
    batch: int
    mode: str
    engine_image_steps_per_s: float
    bare_image_steps_per_s: float
    overhead: float
    peak_gib: float | None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load(case: Case, device: str) -> pa.models.Model:
    weights = "none" if case.model.startswith(("resnet", "vit")) else None
    return pa.models.load(case.model, weights=weights, image_size=case.size, device=device)


def _images(n: int, model: pa.models.Model, seed: int) -> torch.Tensor:
    h, w = model.spec.input_size
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, model.spec.in_chans, h, w, generator=gen)


def bare_rate(model: pa.models.Model, case: Case, mode: str, steps: int, warmup: int) -> float:
    """Image-steps/s of the truncated forward + backward to the input, nothing else."""
    precision, compile = MODES[mode]
    features = fast_features(model.extractor([case.layer]), precision, False, compile)
    x = _images(case.batch, model, 1).to(model.device).requires_grad_(True)

    def step() -> None:
        feats = features(x)[case.layer]
        torch.autograd.grad(feats.float().flatten(1).norm(dim=1).sum(), x)

    for _ in range(warmup):
        step()
    _sync(model.device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(model.device)
    return case.batch * steps / (time.perf_counter() - start)


def engine_rate(
    model: pa.models.Model, case: Case, mode: str, steps: int, warmup: int
) -> tuple[float, float | None]:
    """Image-steps/s of the engine between step ``warmup`` and the last; peak GiB on CUDA."""
    precision, compile = MODES[mode]
    config = InversionConfig.from_preset(
        "default",
        steps=warmup + steps,
        batch_size=case.batch,
        precision=precision,
        compile=compile,
        record_every=warmup,
    )
    marks: dict[int, float] = {}

    def progress(p: pa.inversion.Progress) -> None:  # each report has synchronized the device
        marks.setdefault(p.steps_done, time.perf_counter())

    device = model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    pa.invert(
        model,
        _images(case.batch, model, 0),
        layers=[case.layer],
        seeds="super-noise",
        config=config,
        progress=progress,
    )
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    done = sorted(s for s in marks if s >= warmup)
    first, last = done[0], done[-1]
    return case.batch * (last - first) / (marks[last] - marks[first]), peak


def valid_per_hour(device: str, smoke: bool) -> dict[str, float | int | str]:
    """Valid IRIs per GPU-hour with the study's default inversion settings."""
    from percalign.data import load_images

    name, size = ("tiny-cnn", 32) if smoke else ("resnet50", 224)
    model = _load(Case("", name, size, "penultimate", 0), device)
    photos = load_images("samples", size=model.spec.input_size).images
    preset = PRESETS["default"]
    config = InversionConfig.from_preset("default", **({"steps": 10} if smoke else {}))
    null = null_distribution(model, photos, "penultimate", percentile=1.0)
    _sync(model.device)
    start = time.perf_counter()
    result = pa.invert(model, photos, seeds=preset.seeds, config=config)
    _sync(model.device)
    seconds = time.perf_counter() - start
    valid = int(null.valid(result).sum())
    return {
        "model": f"{name} (random weights, {size} px)",
        "settings": f"preset default: {config.parameterization} pixels, {config.optimizer} "
        f"{config.resolved_lr:g}, {config.steps} steps, {config.schedule}, batch "
        f"{config.batch_size}, {config.precision}, seeds {preset.seeds}",
        "iris": len(result),
        "valid": valid,
        "seconds": round(seconds, 2),
        "valid_per_gpu_hour": round(valid / seconds * 3600, 1),
        "threshold": round(null.threshold, 4),
        "median_distance": round(float(result.distance.median()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny models and sizes, CPU, ~1 minute")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    p.add_argument("--steps", type=int, default=None, help="timed steps per setting")
    p.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    args = p.parse_args(argv)
    device = resolve_device(args.device or ("cpu" if args.smoke else "cuda"))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    steps = args.steps or (4 if args.smoke else 20)
    warmup = 2 if args.smoke else 5
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    print(
        f"# percalign engine on {describe(device)}; torch {torch.__version__}; "
        f"{platform.node()}; {steps} timed steps after {warmup} warm-up steps"
    )
    rows = []
    header = f"{'case':<26} {'batch':>5} {'mode':<13} {'engine img-steps/s':>18} "
    header += f"{'bare img-steps/s':>16} {'overhead':>9} {'peak GiB':>8}"
    print(header)
    started = time.perf_counter()
    for case in SMOKE if args.smoke else FULL:
        model = _load(case, device)
        for mode in modes:
            engine, peak = engine_rate(model, case, mode, steps, warmup)
            bare = bare_rate(model, case, mode, steps, warmup)
            row = Row(case.label, case.batch, mode, engine, bare, bare / engine, peak)
            rows.append(row)
            print(
                f"{row.case:<26} {row.batch:>5} {row.mode:<13} "
                f"{row.engine_image_steps_per_s:>18.1f} {row.bare_image_steps_per_s:>16.1f} "
                f"{row.overhead:>9.2f} {'-' if peak is None else f'{peak:.2f}':>8}",
                flush=True,
            )
        del model
    line = valid_per_hour(device, args.smoke)
    print(
        f"valid IRIs per GPU-hour: {line['valid_per_gpu_hour']} ({line['valid']}/{line['iris']} "
        f"valid in {line['seconds']} s; {line['model']}; {line['settings']}; threshold "
        f"{line['threshold']}, median distance {line['median_distance']})"
    )
    print(f"# total {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "device": describe(device),
                    "rows": [asdict(r) for r in rows],
                    "valid_per_hour": line,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
