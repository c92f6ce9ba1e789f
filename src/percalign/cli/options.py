"""The options several commands share, each declared once: ``--device``, ``--seed``,
``--out``, ``--overwrite``, ``--bootstrap`` and ``--set``.

A command adds them with one call each (``add_device(parser)``); its own help may say more
where the option means something particular there, and a default read from the settings
type that defines it (``Study.seed``, ``Scoring.n_boot``) is the default here too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from percalign.study.sections import Scoring, Study

__all__ = [
    "DEVICE_HELP",
    "add_bootstrap",
    "add_device",
    "add_output",
    "add_overwrite",
    "add_seed",
    "add_set_option",
]

Parser = argparse.ArgumentParser | argparse._ArgumentGroup

#: what ``--device`` takes, and what ``auto`` means
DEVICE_HELP = "auto (the first CUDA GPU when one is visible, else the CPU), cpu, cuda, cuda:1..."


def add_device(parser: Parser, *, default: str | None = "auto", help: str | None = None) -> None:
    """``--device``: where the command's models run (``default`` None: set elsewhere, which
    ``help`` then says)."""
    text = help or f"{DEVICE_HELP} (default: {default})"
    parser.add_argument("--device", default=default, help=text)


def add_seed(
    parser: Parser, *, help: str | None = None, default: int | None = Study.seed, shown: str = ""
) -> None:
    """``--seed``: the seed of the command's random choices (default: a study's; None: set
    elsewhere, which ``shown`` says)."""
    text = help or "seed of every random choice"
    parser.add_argument(
        "--seed", type=int, default=default, help=f"{text} (default: {shown or default})"
    )


def add_output(
    parser: Parser,
    *,
    help: str = "output folder",
    required: bool = True,
    default: Path | None = None,
    overwrite: bool = True,
) -> None:
    """``--out`` (a folder, or a file where ``help`` says so) and, with ``overwrite``,
    ``--overwrite``."""
    parser.add_argument("--out", type=Path, required=required, default=default, help=help)
    if overwrite:
        add_overwrite(parser)


def add_overwrite(parser: Parser, *, help: str = "replace an existing --out") -> None:
    """``--overwrite``: replace what the command would otherwise refuse to write over."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def add_bootstrap(parser: Parser, *, default: int | None = Scoring.n_boot, shown: str = "") -> None:
    """``--bootstrap``: resamples of every bootstrap CI (as ``[scoring] n_boot``; None: set
    elsewhere, which ``shown`` says)."""
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=default,
        help=f"bootstrap resamples of every CI (default: {shown or default})",
    )


def add_set_option(parser: Parser) -> None:
    """``--set SECTION.KEY=VALUE``, repeatable (see :mod:`percalign.study.overrides`)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a setting of the spec, e.g. --set inversion.steps=100 or --set "
        "models.*.train.epochs=1 (repeatable; the study folder gets the spec with them)",
    )
