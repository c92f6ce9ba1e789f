"""Argument parsing: one parser, one sub-command per module."""

from __future__ import annotations

import argparse
from typing import NoReturn

from percalign import __version__
from percalign.errors import PercalignError

__all__ = ["UsageError", "build_parser"]


class UsageError(PercalignError, ValueError):
    """The command line itself is wrong (unknown option, missing value...)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from percalign.cli import demo, invert, judge, models, score, study, survey, train, trust

    parser = _Parser(
        prog="percalign",
        description=(
            "Measure how well vision models' representations align with human perception."
        ),
    )
    parser.add_argument("--version", action="version", version=f"percalign {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(
        title="commands", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for module in (models, train, invert, judge, survey, score, trust, study, demo):
        module.add_parser(sub)
    return parser
