"""Files, formats and the database: PNG stimuli, inversion run folders, study folders.

Attributes are imported on first use, so that light users (the survey web service) do not
pull in torch through the image helpers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "png_bytes": "images",
    "read_png": "images",
    "write_png": "images",
    "MANIFEST": "runs",
    "atomic_folder": "runs",
    "check_output": "runs",
    "gate_warnings": "runs",
    "read_manifest": "runs",
    "save_run": "runs",
    "subset_run": "runs",
    "write_table": "runs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"percalign.store.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'percalign.store' has no attribute {name!r}")
