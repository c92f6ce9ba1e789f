"""``percalign invert``: make IRIs of a model's representation and save them with a manifest."""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from rich.table import Table

from percalign import data, models
from percalign._device import resolve_device
from percalign._settings import add_options, options_from
from percalign.cli._console import err, inversion_progress, out
from percalign.cli.options import add_device, add_output
from percalign.errors import ConfigError
from percalign.execution.run_folders import check_inversion, invert_images
from percalign.execution.tasks import adversary
from percalign.inversion import InversionConfig, InversionResult
from percalign.inversion.config import PRESET_FIELDS, PRESETS
from percalign.store import check_output, gate_warnings, read_manifest
from percalign.study.sections import Images, Inversion


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose and place a model (shared by every command that loads one)."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", required=True, help="model name (see `percalign models list`)")
    g.add_argument(
        "--weights",
        default=None,
        help="none | an enum name | PATH or URL, optionally TAG:PATH (default: the model's own)",
    )
    g.add_argument("--image-size", type=int, default=None, help="input size (default: model's)")
    g.add_argument("--mean", type=_floats, default=None, help="normalization, for TorchScript")
    g.add_argument("--std", type=_floats, default=None, help="normalization, for TorchScript")
    g.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow weights files with pickled objects (trusted files only)",
    )
    add_device(g)


def load_model(args: argparse.Namespace) -> models.Model:
    device = resolve_device(args.device)
    return models.load(
        args.model,
        weights=args.weights,
        image_size=args.image_size,
        allow_pickle=args.allow_pickle,
        mean=args.mean,
        std=args.std,
        device=device,
    )


def add_inversion_options(parser: argparse.ArgumentParser, *, preset: str = "default") -> None:
    """Objective and optimizer options (shared by every command that inverts).

    The optimizer settings start from ``--preset`` (default ``preset``); each option given
    overrides the preset's value.
    """
    g = parser.add_argument_group("objective and optimizer")
    g.add_argument(
        "--layer",
        action="append",
        default=None,
        help="layer(s) to invert, comma-separated or repeated; a weighted sum such "
        "as 0.5*layer3+layer4 is one objective (default: penultimate)",
    )
    g.add_argument(
        "--preset",
        default=preset,
        help="optimizer settings to start from: "
        + "; ".join(f"{p.name}: {p.about}" for p in PRESETS.values())
        + f" (default: {preset}); the options below override it",
    )
    add_options(
        g,
        InversionConfig,
        exclude=("stop_at_valid",),
        defaults={name: None for name in PRESET_FIELDS},
    )
    g.add_argument(
        "--stop-at",
        default=None,
        metavar="valid[:MARGIN]",
        help="stop an image once its distance is below the validity threshold times MARGIN "
        "(default 1; needs the validity null); never: run every step",
    )


def _stop_at(text: str | None) -> float | None:
    """The margin of ``--stop-at valid[:MARGIN]``."""
    if text is None or text == "never":
        return None
    kind, _, margin = text.partition(":")
    if kind != "valid":
        raise ConfigError(f"--stop-at takes 'valid', 'valid:MARGIN' or 'never'; got {text!r}.")
    try:
        return float(margin) if margin else 1.0
    except ValueError:
        raise ConfigError(
            f"--stop-at valid:MARGIN needs a number in (0, 1] as MARGIN; got {margin!r}."
        ) from None


def inversion_config(args: argparse.Namespace) -> InversionConfig:
    """The :class:`InversionConfig` of the options of :func:`add_inversion_options`."""
    options = options_from(InversionConfig, args, exclude=("stop_at_valid",))
    options["adversarial_lambda"] = _lambda(options["adversarial_lambda"])
    return InversionConfig.from_options(
        args.preset, **options, stop_at_valid=_stop_at(args.stop_at)
    )


def layer_list(args: argparse.Namespace) -> list[str]:
    """The layer objectives of ``--layer`` (comma-separated or repeated; default penultimate)."""
    return [item for arg in (args.layer or ["penultimate"]) for item in arg.split(",") if item]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "invert",
        help="invert a model's representation into IRIs",
        description="Find images (IRIs) that the model represents like each "
        "target at the chosen layer, from each seed.",
    )
    add_model_options(p)
    g = p.add_argument_group("images and seeds")
    g.add_argument(
        "--images",
        default=Images.source,
        help=f"digits | samples | a folder or glob of images (default: {Images.source})",
    )
    g.add_argument("--n-images", type=int, default=8, help="number of targets (default: 8)")
    g.add_argument("--split", default="all", help="all | train | test (digits)")
    g.add_argument(
        "--seeds",
        default=None,
        help="seed types, comma-separated, each optionally :COUNT; of "
        "super-noise, light-noise, uniform, white, black, grey, image (default: the "
        "preset's: " + "; ".join(f"{p.name}: {p.seeds}" for p in PRESETS.values()) + ")",
    )
    add_inversion_options(p)
    g = p.add_argument_group("validity gate and output")
    g.add_argument(
        "--null-images",
        type=int,
        default=Images.null_images,
        help="natural images whose pairwise distances form the validity null "
        f"(default: {Images.null_images})",
    )
    g.add_argument("--validity-percentile", type=float, default=Inversion.validity_percentile)
    add_output(g)
    p.set_defaults(run=run)


def _lambda(text: float | str | None) -> float | str | None:
    if text is None or text == "auto" or isinstance(text, float):
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"--adversarial-lambda must be a number or 'auto'; got {text!r}."
        ) from None


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments of :func:`invert_images` that the options describe."""
    config = inversion_config(args)
    if config.stop_at_valid is not None and args.null_images < 2:
        raise ConfigError(
            "--stop-at valid needs the validity null: give --null-images of at least 2."
        )
    model = load_model(args)
    if config.loss_spec.adversarial:  # built once here (a bad --adversary fails now), kept
        adversary(config.adversary, resolve_device(str(model.device)))
    seeds = args.seeds or PRESETS[args.preset].seeds
    objectives = check_inversion(model, layer_list(args), seeds)
    every = data.load_images(args.images, size=model.spec.input_size, split=args.split)
    return {
        "model": model,
        "targets": data.choose(every, args.n_images, args.seed),
        "layers": [o.name for o in objectives],
        "seeds": seeds,
        "config": config,
        "null_pool": data.choose(every, min(args.null_images, len(every)), args.seed + 1),
        "validity_percentile": args.validity_percentile,
    }


def _table(title: str, layers: list[str], result: InversionResult, nulls: dict[str, Any]) -> Table:
    """Per objective and seed type: IRIs, distances, how many are valid and since when."""
    table = Table(title=title)
    for col in ("layer", "seed", "IRIs", "median dist.", "seed dist.", "valid", "first valid"):
        table.add_column(col)
    table.add_column("at 0 / at 1")
    for objective in layers:
        for kind in dict.fromkeys(result.seed_kind):
            rows = [
                i
                for i in range(len(result))
                if result.objective[i] == objective and result.seed_kind[i] == kind
            ]
            idx = torch.tensor(rows)
            valid = nulls[objective].valid(result.distance[idx], objective=objective)
            first = result.first_valid_step[idx]
            first = first[first >= 0]
            table.add_row(
                objective,
                kind,
                str(len(rows)),
                f"{result.distance[idx].median():.4f}",
                f"{result.seed_distance[idx].median():.4f}",
                f"{int(valid.sum())}/{len(rows)}",
                f"step {int(first.median())}" if len(first) else "never",
                f"{result.at_zero[idx].mean():.0%} / {result.at_one[idx].mean():.0%}",
            )
    return table


def run(args: argparse.Namespace) -> int:
    check_output(args.out, args.overwrite)  # fail before any work
    given = _inputs(args)
    model, config = given["model"], given["config"]
    err.print(
        f"Inverting {model.spec.name} at {', '.join(given['layers'])}: "
        f"{len(given['targets'])} targets x seeds {given['seeds']}, {config.steps} steps "
        f"(preset {config.preset or 'none (custom settings)'}: "
        f"{config.resolved_parameterization} pixels, {config.optimizer}, lr "
        f"{config.resolved_lr:g}, {config.schedule}; loss {config.loss}) on {model.device}"
    )
    started = time.perf_counter()
    with inversion_progress("invert") as progress:
        result, nulls = invert_images(
            args.out,
            **given,
            progress=progress,
            overwrite=args.overwrite,
            extra={"images": {"split": args.split}, "command": "percalign invert"},
        )
    elapsed = time.perf_counter() - started
    out.print(_table(f"IRIs of {model.spec.name} -> {args.out}", given["layers"], result, nulls))
    for line in gate_warnings(read_manifest(args.out)):
        err.print(f"[yellow]Warning:[/] {line}")
    out.print(
        f"dist.: relative representation distance of the saved 8-bit IRI; valid: below "
        f"percentile {args.validity_percentile:g} of the distances between distinct natural "
        "images; first valid: median step at which IRIs first got below it while optimized; "
        "at 0 / at 1: "
        "share of the IRIs' pixel values at the bounds."
    )
    out.print(
        f"Wrote {len(result)} IRIs in {elapsed:.1f} s: {args.out}/iris, targets in "
        f"{args.out}/targets, seeds in {args.out}/seeds, manifest {args.out}/manifest.json, "
        f"overview {args.out}/grid.png"
    )
    return 0
