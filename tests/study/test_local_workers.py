"""The local backend's worker processes: the same files as in-process tasks, the work done in
other processes, errors that come back as themselves, and a dead worker as a one-line error."""

from __future__ import annotations

import json
import os

import pytest

from percalign.errors import ServiceError, WeightsError
from percalign.execution.backends import LocalBackend
from percalign.execution.tasks import Task
from percalign.study.pipeline import LEDGER, run_study
from percalign.study.spec import load_spec

STEPS = 20


class RecordingBackend(LocalBackend):
    """The local backend, noting which process computed each task's output."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.computed_by: list[tuple[str, int]] = []

    def run(self, tasks):
        for task, output in super().run(tasks):
            self.computed_by.append((task.label, output.pid))
            yield task, output


def test_worker_processes_write_the_same_files_as_in_process_tasks(
    tmp_path, small_study, study_digest
):
    reference = tmp_path / "one"
    run_study(load_spec(small_study(reference, steps=STEPS)), reference, log=lambda _m: None)
    folder = tmp_path / "two"
    spec = load_spec(small_study(folder, steps=STEPS, extra="[tasks]\nworkers = 2\n"))
    assert spec.tasks.workers == 2
    backend = RecordingBackend(spec.tasks.workers)
    assert not backend.in_process
    run_study(spec, folder, log=lambda _m: None, backend=backend)
    assert study_digest(folder) == study_digest(reference)
    pids = {pid for _label, pid in backend.computed_by}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    labels = [label for label, _pid in backend.computed_by]
    assert any(x.startswith("invert ") for x in labels) and any(
        x.startswith("judge ") for x in labels
    )
    ledger = json.loads((folder / LEDGER).read_text())["steps"]
    assert {v.get("backend") for k, v in ledger.items() if k.startswith("invert:")} == {"local"}


def test_zero_workers_means_one_per_cpu():
    from percalign.execution.backends import available_cpus

    assert LocalBackend(0).workers == available_cpus()
    assert LocalBackend(0, threads=available_cpus()).workers == 1
    assert LocalBackend(1).in_process


def test_a_percalign_error_in_a_worker_comes_back_as_itself(wrong_weights_task):
    with LocalBackend(2) as backend, pytest.raises(WeightsError) as info:
        list(backend.run([wrong_weights_task]))
    assert "other weights here" in str(info.value) and "\n" not in str(info.value)


def test_a_worker_that_dies_stops_the_step_in_one_line():
    dies = Task("k", "invert crash", os._exit, (3,))
    with LocalBackend(2) as backend, pytest.raises(ServiceError) as info:
        list(backend.run([dies]))
    message = str(info.value)
    assert "'invert crash'" in message and "run the study again to resume" in message
    assert "\n" not in message
