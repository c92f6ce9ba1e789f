"""Convergence study: which optimizer settings reach valid IRIs from which seeds, and how fast.

A benchmark, not a test. For each model of the zoo, seed type and optimizer setting, it
inverts the penultimate representation of test images with the regularizer-free loss and
reports, per cell: the median representation distance of the saved 8-bit IRIs, the share
that passes the validity gate (below the 1st percentile of distances between distinct natural
images), the steps at which IRIs first passed (median and 90th percentile, of those that did),
the share of their values at 0 or 1, and the wall time.

The digits zoo is the demo's four models (trained from ``study/demo.toml`` if missing) plus
a TRADES model. The second dataset is 32x32 grey crops of scikit-image's sample photographs,
labelled by the photograph they come from, with one standard and one adversarially trained
model. ``--fast-vs-long`` also compares the alignment per model (other-target 2AFC of the
pixel and SSIM judges, with 95% bootstrap CIs) between the default preset and a 5x longer run
of the same setting.

Usage:
    .venv/bin/python benchmarks/convergence.py [--targets 8] [--json out.json]
        [--settings NAME,...] [--datasets digits,photos] [--fast-vs-long]

Set PERCALIGN_HOME to keep the zoo elsewhere. Full run on 2 cores: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from percalign import data, models
from percalign.data.images import to_channels
from percalign.inversion import InversionConfig, invert, null_distribution
from percalign.study.spec import load_spec
from percalign.training import TrainConfig, read_meta, save_checkpoint, train
from percalign.training.zoo import zoo_dir

SEEDS = ("super-noise", "light-noise", "uniform", "grey", "image")
#: cells of an earlier run (--resume LOG), by (model, setting)
DONE: dict[tuple[str, str], list[dict[str, Any]]] = {}


@dataclass(frozen=True)
class Setting:
    name: str
    config: dict[str, Any]


SETTINGS = {
    s.name: s
    for s in (
        Setting("paper", {"preset": "paper"}),
        Setting("paper-1000", {"preset": "paper", "steps": 1000}),
        # the cost to validity: each image stopped once it passes the gate
        Setting("paper-stop", {"preset": "paper", "stop_at_valid": 1.0}),
        Setting("default", {"preset": "default"}),
        Setting("default-stop", {"preset": "default", "stop_at_valid": 1.0}),
        Setting(
            "clamped-adam",  # the old demo's setting
            {"parameterization": "pixel", "optimizer": "adam", "lr": 0.02, "steps": 1000},
        ),
        Setting("sigmoid-adam", {"preset": "default", "steps": 1000}),
        Setting("sigmoid-adam-stop", {"preset": "default", "steps": 1000, "stop_at_valid": 0.9}),
        Setting("sigmoid-adam-500", {"preset": "default", "steps": 500}),
        Setting("sigmoid-adam-2000", {"preset": "default", "steps": 2000}),
        Setting("sigmoid-adam-250", {"preset": "default", "steps": 250}),
        Setting("sigmoid-adam-0.2-500", {"preset": "default", "lr": 0.2, "steps": 500}),
        Setting("sigmoid-adam-0.2-300", {"preset": "default", "lr": 0.2, "steps": 300}),
        Setting(
            "sigmoid-ngd",
            {
                "parameterization": "sigmoid",
                "optimizer": "normalized-gd",
                "lr": 4.0,
                "schedule": "constant",
                "steps": 1000,
            },
        ),
    )
}


def config_of(setting: Setting, **extra: Any) -> InversionConfig:
    settings = dict(setting.config)
    preset = settings.pop("preset", None)
    if preset:
        return InversionConfig.from_preset(preset, **settings, **extra)
    return InversionConfig(**{"schedule": "cosine", **settings, **extra})


def ensure(name: str, cfg: TrainConfig) -> dict[str, Any]:
    """Train ``name`` into the zoo unless it is there; return its metadata."""
    if not (zoo_dir() / name / "meta.json").is_file():
        started = time.perf_counter()
        net, meta, kept = train(cfg)
        save_checkpoint(name, net, meta, kept)
        print(f"trained {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return read_meta(name)


def digits_zoo() -> dict[str, dict[str, Any]]:
    spec = load_spec_text()
    zoo = {m.name: dict(m.train or {}) for m in spec.models}
    std = next(iter(zoo.values()))
    zoo["bench-w16-trades"] = {
        **std,
        "recipe": "trades",
        "eps": 1.0,
        "beta": 6.0,
        "pgd_steps": 3,
    }
    return zoo


def load_spec_text() -> Any:
    from importlib.resources import files

    text = (files("percalign.study") / "demo.toml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.toml"
        path.write_text(text)
        return load_spec(path)


PHOTO_SIZE = 32


def photo_folder(root: Path, per_photo: int = 300, seed: int = 0) -> Path:
    """train/ and test/ class folders of 32x32 grey crops of scikit-image's photographs.

    The class is the photograph a crop comes from; the crops are random squares of 48-128 px
    of the photograph at 256 px. Test crops are drawn apart from the train crops, but from the
    same photographs, so they may overlap them: a held-out split of crops, not of scenes.
    """
    from PIL import Image

    photos = data.load_images("samples", size=(256, 256), split="all")
    for split, count, offset in (("train", per_photo, 0), ("test", per_photo // 3, 1)):
        rng = np.random.default_rng([seed, offset])
        for image, ident in zip(photos.images, photos.ids, strict=True):
            grey = image.mean(0).numpy()
            folder = root / split / ident.split("/")[-1]
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                side = int(rng.integers(48, 129))
                y, x = rng.integers(0, 256 - side, size=2)
                crop = grey[y : y + side, x : x + side]
                img = Image.fromarray((crop * 255).round().astype(np.uint8))
                img.resize((PHOTO_SIZE, PHOTO_SIZE), Image.BILINEAR).save(folder / f"{k:04d}.png")
    return root


def photos_zoo(folder: Path) -> dict[str, dict[str, Any]]:
    base = {
        "dataset": str(folder),
        "arch": "small-cnn",
        "width": 16,
        "epochs": 15,
        "lr": 2e-3,
        "image_size": PHOTO_SIZE,
        "eval_images": 128,
    }
    return {
        "bench-photos-std": {**base, "recipe": "standard"},
        "bench-photos-adv": {**base, "recipe": "adv-l2", "eps": 1.0, "pgd_steps": 3},
    }


def run_setting(
    model: models.Model,
    targets: data.ImageSet,
    pool: torch.Tensor,
    seeds: tuple[str, ...],
    config: InversionConfig,
    threshold: float,
) -> list[dict[str, Any]]:
    """One call for all seed types (one batch where it fits); one row per seed type."""
    started = time.perf_counter()
    result = invert(
        model,
        to_channels(targets.images, model.spec.in_chans),
        seeds=",".join(seeds),
        config=config,
        labels=targets.labels,
        seed_images=pool,
        thresholds={"penultimate": threshold},
    )
    wall = time.perf_counter() - started
    rows = []
    kinds = np.array(result.seed_kind)
    for seed in seeds:
        pick = torch.as_tensor(np.flatnonzero(kinds == seed))
        dist = result.distance[pick].numpy()
        first = result.first_valid_step[pick].numpy()
        first = first[first >= 0]
        rows.append(
            {
                "seed": seed,
                "iris": len(pick),
                "median_distance": float(np.median(dist)),
                "pass_rate": float((dist < threshold).mean()),
                "steps_to_valid_median": float(np.median(first)) if len(first) else None,
                "steps_to_valid_p90": float(np.percentile(first, 90)) if len(first) else None,
                "saturated": float((result.at_zero[pick] + result.at_one[pick]).mean()),
                "wall_s": round(wall * len(pick) / len(result), 2),
            }
        )
    return rows


def study(
    names: list[str],
    every: data.ImageSet,
    n_targets: int,
    settings: list[Setting],
    seeds: tuple[str, ...],
) -> list[dict[str, Any]]:
    targets = data.choose(every, n_targets, 0)
    null_pool = data.choose(every, min(256, len(every)), 1)
    rows = []
    for name in names:
        model = models.load(name)
        pool = to_channels(null_pool.images, model.spec.in_chans)
        null = null_distribution(model, pool, "penultimate")
        for setting in settings:
            if (name, setting.name) in DONE:
                rows += DONE[(name, setting.name)]
                continue
            config = config_of(setting, batch_size=64)
            for row in run_setting(model, targets, pool, seeds, config, null.threshold):
                rows.append(
                    {"model": name, "setting": setting.name, **row, "threshold": null.threshold}
                )
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def fast_vs_long(
    names: list[str], every: data.ImageSet, n_targets: int, steps: int
) -> list[dict[str, Any]]:
    """Alignment per model and judge after ``steps`` of the default preset and 5x as many."""
    from percalign.execution.run_folders import invert_images
    from percalign.judges import get_judges
    from percalign.judges.metric import judge_run
    from percalign.scoring import bootstrap_ci
    from percalign.store.runs import read_run

    targets = data.choose(every, n_targets, 0)
    null_pool = data.choose(every, min(256, len(every)), 1)
    base = InversionConfig.from_preset("default", batch_size=64, steps=steps)
    judges = get_judges("pixel,ssim")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            model = models.load(name)
            for label, steps in (("default", base.steps), ("5x longer", 5 * base.steps)):
                folder = Path(tmp) / f"{name}-{steps}"
                cfg = InversionConfig.from_preset("default", batch_size=64, steps=steps)
                invert_images(
                    folder,
                    model,
                    targets,
                    seeds="super-noise,image",
                    config=cfg,
                    null_pool=null_pool,
                )
                table = judge_run(read_run(folder), judges, k=4, seed=0)
                table = table[table["valid"].astype(bool)]
                for judge, part in table.groupby("judge"):
                    values = part["other_2afc"].to_numpy(dtype=float)
                    low, high = bootstrap_ci(values, seed=0)
                    rows.append(
                        {
                            "model": name,
                            "run": label,
                            "steps": steps,
                            "judge": judge,
                            "valid_iris": len(values),
                            "alignment": float(values.mean()),
                            "ci_low": low,
                            "ci_high": high,
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | setting | seed | median dist. | valid | steps to valid (median / p90) "
        "| at 0 or 1 | wall (s) |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        steps = (
            f"{r['steps_to_valid_median']:.0f} / {r['steps_to_valid_p90']:.0f}"
            if r["steps_to_valid_median"] is not None
            else "never"
        )
        lines.append(
            f"| {r['model']} | {r['setting']} | {r['seed']} | {r['median_distance']:.3f} | "
            f"{100 * r['pass_rate']:.0f}% | {steps} | {100 * r['saturated']:.0f}% | "
            f"{r['wall_s']:.1f} |"
        )
    return "\n".join(lines)


def cost_ratios(rows: list[dict[str, Any]]) -> str:
    """Per model: wall time for the batch to reach the gate, paper-stop over default-stop.

    Both settings stop each image once it passes, so the wall time is the compute spent to
    reach validity (all of it, for the images that never pass); the two run in one process,
    one after the other, on the same targets and seeds.
    """
    lines = [
        "| model | paper: valid, wall (s) | default: valid, wall (s) | paper / default |",
        "|---|---|---|---|",
    ]
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["model"], r["setting"]), []).append(r)
    for model in dict.fromkeys(r["model"] for r in rows):
        cells = [by.get((model, s)) for s in ("paper-stop", "default-stop")]
        if not all(cells):
            continue
        valid = [sum(r["pass_rate"] * r["iris"] for r in c) for c in cells]  # type: ignore[union-attr]
        iris = [sum(r["iris"] for r in c) for c in cells]  # type: ignore[union-attr]
        wall = [sum(r["wall_s"] for r in c) for c in cells]  # type: ignore[union-attr]
        lines.append(
            f"| {model} | {valid[0]:.0f}/{iris[0]}, {wall[0]:.1f} | {valid[1]:.0f}/{iris[1]}, "
            f"{wall[1]:.1f} | {wall[0] / wall[1]:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=8, help="targets per cell")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="settings to run")
    parser.add_argument("--seeds", default=",".join(SEEDS))
    parser.add_argument("--datasets", default="digits,photos")
    parser.add_argument("--models", default=None, help="only these zoo models")
    parser.add_argument("--fast-vs-long", action="store_true")
    parser.add_argument("--fast-targets", type=int, default=32)
    parser.add_argument(
        "--fast-steps",
        type=int,
        default=None,
        help="steps of the fast run (default: the default preset's)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="a log of an earlier run: its finished cells are not run again",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.resume:
        for line in args.resume.read_text().splitlines():
            if line.startswith('{"model"'):
                row = json.loads(line)
                DONE.setdefault((row["model"], row["setting"]), []).append(row)
    settings = [SETTINGS[s] for s in args.settings.split(",")]
    seeds = tuple(args.seeds.split(","))
    results: dict[str, Any] = {"grid": [], "fast_vs_long": [], "accuracy": {}}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        if "digits" in args.datasets:
            zoo = digits_zoo()
            sets["digits"] = (zoo, data.load_images("digits", size=(32, 32), split="test"))
        if "photos" in args.datasets:
            folder = photo_folder(Path(tmp) / "photos")
            zoo = photos_zoo(folder)
            # the held-out crops: the trainer's own test split of the folder
            from percalign.training.datasets import load_dataset

            test = load_dataset(str(folder), "test", None, PHOTO_SIZE)
            every = data.ImageSet(
                test.images,
                tuple(f"photos/{i}" for i in range(len(test.images))),
                test.labels,
                "photos",
            )
            sets["photos"] = (zoo, every)
        for dataset, (zoo, every) in sets.items():
            for name, train_args in zoo.items():
                meta = ensure(name, TrainConfig(**train_args))
                results["accuracy"][name] = {
                    k: v for k, v in meta.items() if k.endswith("accuracy")
                }
            if args.train_only:
                continue
            names = [n for n in zoo if args.models is None or n in args.models.split(",")]
            results["grid"] += [
                {"dataset": dataset, **r}
                for r in study(names, every, args.targets, settings, seeds)
            ]
            if args.fast_vs_long:
                results["fast_vs_long"] += [
                    {"dataset": dataset, **r}
                    for r in fast_vs_long(
                        names, every, args.fast_targets, args.fast_steps or InversionConfig().steps
                    )
                ]
    print(json.dumps(results["accuracy"], indent=1))
    if results["grid"]:
        print(markdown(results["grid"]))
        print()
        print(cost_ratios(results["grid"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
