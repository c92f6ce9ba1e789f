"""Shared survey fixtures: a small inversion run, study folders built from it, live servers.

The test-only servers and the load simulator (``_servers``, ``_load``) are in benchmarks/,
outside the package; this puts that folder on the import path of the survey tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from percalign.cli import main
from percalign.execution.serve import serve_app
from percalign.survey.servers import free_port as _free_port

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))


@pytest.fixture(scope="session")
def survey_run(tmp_path_factory) -> Path:
    """An inversion run of tiny-vgg: 4 digits x (super-noise, image) seeds, 3 steps."""
    run = tmp_path_factory.mktemp("survey-run") / "run"
    assert (
        main(
            [
                "invert",
                "--model",
                "tiny-vgg",
                "--images",
                "digits",
                "--n-images",
                "4",
                "--seeds",
                "super-noise,image",
                "--steps",
                "3",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    return run


@pytest.fixture(scope="session")
def make_study(tmp_path_factory, survey_run) -> Callable[..., Path]:
    """Build a fresh study folder from ``survey_run``: 6 trials each, 2 judgments per item."""

    def build(*extra: str) -> Path:
        folder = tmp_path_factory.mktemp("study") / "STUDY"
        assert (
            main(
                [
                    "survey",
                    "build",
                    str(folder),
                    "--runs",
                    str(survey_run),
                    "--include-invalid",
                    "--trials-per-participant",
                    "6",
                    "--judgments-per-item",
                    "2",
                    *extra,
                ]
            )
            == 0
        )
        return folder

    return build


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function giving a TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_port


@pytest.fixture(scope="session")
def live_server() -> Callable[[FastAPI], Any]:
    """A context manager serving an app with uvicorn on 127.0.0.1 (yields its base URL)."""
    return serve_app
