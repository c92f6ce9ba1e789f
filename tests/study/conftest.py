"""A small study without a survey (tiny models, 8 digits, batches of 4) and a digest of what it
wrote, shared by the task and Ray tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SMALL_STUDY = """
[[models]]
name = "tiny-cnn"

[[models]]
name = "tiny-vgg"

[images]
n = 8
null_images = 16

[inversion]
seeds = "super-noise,image"
steps = STEPS
batch_size = 4

[judges]
names = ["pixel", "ssim"]

[survey]
enabled = false
"""


def _write(folder: Path, steps: int = 20, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.toml"
    path.write_text(SMALL_STUDY.replace("STEPS", str(steps)) + extra)
    return path


def _digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every PNG and judgments.csv of the study's runs, and the IRI records."""
    import json

    found = {}
    for path in sorted((folder / "runs").rglob("*")):
        if path.suffix == ".png" or path.name == "judgments.csv":
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    for manifest in sorted((folder / "runs").glob("*/manifest.json")):
        records = json.loads(manifest.read_text())["iris"]
        found[manifest.parent.name + "/records"] = hashlib.sha256(
            json.dumps(records, sort_keys=True).encode()
        ).hexdigest()
    return found


@pytest.fixture(scope="session")
def small_study() -> Callable[..., Path]:
    """``small_study(folder, steps=20, extra="")`` writes the spec and returns its path."""
    return _write


@pytest.fixture(scope="session")
def study_digest() -> Callable[[Path], dict[str, str]]:
    return _digest


@pytest.fixture
def wrong_weights_task() -> Any:
    """A task whose model reference names other weights than the zoo's: it raises
    WeightsError wherever it runs, to check that backends return percalign's errors as
    themselves."""
    from percalign.execution.tasks import ModelRef, Task, invert_part

    ref = ModelRef("tiny-cnn", None, "0" * 64)  # not the hash of its weights
    return Task(
        "k",
        "invert bad",
        invert_part,
        (ref, None, None),
        {"layers": [], "seeds": "", "config": None},
    )
