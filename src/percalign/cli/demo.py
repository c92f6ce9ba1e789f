"""``percalign demo``: the main job on the embedded digits, offline, in a few minutes.

Trains (once; cached in the zoo) a standard and an adversarially trained (L2, eps 2) CNN on
the digits, inverts the same test digits for both from noise and from other digits, judges the
IRIs automatically, and prints where everything is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from percalign.cli._console import out
from percalign.training.zoo import zoo_dir

#: zoo name -> training arguments
DEMO_MODELS = {
    "demo-digits-standard": ["--recipe", "standard", "--epochs", "10"],
    "demo-digits-robust": ["--recipe", "adv-l2", "--eps", "2.0", "--epochs", "10"],
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded digits")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder")
    p.add_argument("--steps", type=int, default=300, help="inversion steps (Adam)")
    p.add_argument("--n-images", type=int, default=12, help="test digits to invert")
    p.set_defaults(run=run)


def _call(argv: list[str]) -> None:
    from percalign.cli._app import build_parser

    ns = build_parser().parse_args(argv)
    ns.run(ns)


def run(args: argparse.Namespace) -> int:
    for name, train_args in DEMO_MODELS.items():
        if (zoo_dir() / name / "meta.json").is_file():
            out.print(f"Using {name} from the zoo ({zoo_dir() / name})")
            continue
        out.print(f"Training {name} (once; it is kept in {zoo_dir()})")
        _call(["train", "--dataset", "digits", "--arch", "small-cnn", "--name", name, *train_args])
    folders = []
    for name in DEMO_MODELS:
        folder = args.out / name
        _call(
            [
                "invert",
                "--model",
                name,
                "--images",
                "digits",
                "--split",
                "test",
                "--n-images",
                str(args.n_images),
                "--seeds",
                "super-noise,image",
                "--optimizer",
                "adam",
                "--steps",
                str(args.steps),
                "--out",
                str(folder),
                "--overwrite",
            ]
        )
        _call(["judge", str(folder), "--judges", "pixel,ssim,ms-ssim"])
        folders.append(folder)
    out.print("\n[bold]Done.[/] IRI overviews (target | seed | IRI):")
    for folder in folders:
        out.print(f"  {folder / 'grid.png'}")
    out.print("Per-IRI records: manifest.json; judge decisions: judgments.csv in each folder.")
    out.print(
        "Only IRIs marked valid are represented like their targets; from super-noise seeds "
        "these small CNNs rarely get there (see `valid`)."
    )
    return 0
