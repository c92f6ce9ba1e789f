"""``percalign demo``: the main job on the embedded default (digits)."""

from __future__ import annotations

import argparse
from pathlib import Path

from percalign.cli import invert


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded digits")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    parser = argparse.ArgumentParser()
    invert_parser = parser.add_subparsers().add_parser("invert")
    invert.add_model_options(invert_parser)
    inv_args = [
        "invert",
        "--model",
        "tiny-cnn",
        "--images",
        "digits",
        "--n-images",
        "8",
        "--seeds",
        "super-noise,image",
        "--steps",
        "200",
        "--optimizer",
        "adam",
        "--out",
        str(args.out / "inversion"),
        "--overwrite",
    ]
    from percalign.cli._app import build_parser

    ns = build_parser().parse_args(inv_args)
    return ns.run(ns)
