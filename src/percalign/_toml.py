"""TOML reading on every supported Python: ``tomllib`` from 3.11, the ``tomli`` backport on 3.10.

>>> loads('consent = "Run by A. Lee"')
{'consent': 'Run by A. Lee'}
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from tomllib import TOMLDecodeError, loads
else:  # pragma: no cover - the 3.10 path (tomli is a dependency there)
    from tomli import TOMLDecodeError, loads

__all__ = ["TOMLDecodeError", "loads"]
