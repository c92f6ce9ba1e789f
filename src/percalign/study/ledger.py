"""The record of a study's finished steps (``pipeline.json``), step keys, and the folder lock.

A step's key is a short hash of what it was computed from. The ledger records the key of every
finished step instance; one whose key is recorded and whose output exists is done. The ledger
is rewritten atomically after its step's output is in place, so a step cut short never looks
finished, and :func:`sweep` removes what a killed run left half-written.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from percalign.errors import OutputExistsError
from percalign.execution.tasks import job_key as step_key

__all__ = ["KEY_FORMAT", "LEDGER", "Ledger", "lock", "step_key", "sweep"]

LEDGER = "pipeline.json"
#: how keys are made: 2 derives them from the steps' declarations; entries without a
#: ``key_format`` were keyed by the hand-written key functions before (``legacy_keys``)
KEY_FORMAT = 2
_LEFTOVER = re.compile(r"^\..+\.(tmp|old)(-[0-9a-f]{8})?$")


class Ledger:
    """The record of finished steps in ``folder/pipeline.json`` (rewritten atomically)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LEDGER
        self.steps: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self.steps = json.loads(self.path.read_text()).get("steps", {})

    def done(self, name: str, key: str) -> bool:
        return self.steps.get(name, {}).get("key") == key

    def old_format(self, name: str) -> bool:
        """Whether ``name`` is recorded with a key of the previous format."""
        return name in self.steps and "key_format" not in self.steps[name]

    def has_old_format(self) -> bool:
        return any(self.old_format(name) for name in self.steps)

    def record(self, name: str, key: str, seconds: float, **info: Any) -> None:
        self.steps[name] = {
            "key": key,
            "key_format": KEY_FORMAT,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(seconds, 3),
            **info,
        }
        self._save()

    def rekey(self, name: str, key: str) -> None:
        """Give ``name``, recorded under the previous format, its key in this one."""
        self.steps[name] = {**self.steps[name], "key": key, "key_format": KEY_FORMAT}
        self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(f".{LEDGER}.tmp")
        tmp.write_text(json.dumps({"steps": self.steps}, indent=1) + "\n")
        os.replace(tmp, self.path)


@contextmanager
def lock(folder: Path) -> Iterator[None]:
    """Hold the study folder for one ``study run`` at a time (refused in one line otherwise)."""
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputExistsError(
                f"Another `percalign study run` is working in {str(folder)!r}; wait for it."
            ) from None
        yield


def sweep(folder: Path) -> None:
    """Remove what a killed run left half-written: hidden ``.NAME.tmp-*``/``.old-*`` entries."""
    for path in sorted(folder.rglob(".*"), key=lambda p: len(p.parts), reverse=True):
        if _LEFTOVER.match(path.name):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
