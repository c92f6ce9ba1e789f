"""The ``percalign`` command: thin commands over the public API."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from percalign.cli._app import build_parser
from percalign.errors import PercalignError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (1 for any user error, with a one-line message)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except PercalignError as exc:
        if debug:
            raise
        print(f"percalign: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("percalign: interrupted", file=sys.stderr)
        return 130
