"""The study on Ray: the same files as the local backend, a worker killed mid-task changes
nothing, progress in the CLI, and one-line errors. A real local Ray instance limited to two
CPUs, started once for the module and shut down (its temporary folder removed) after it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from percalign.cli import main
from percalign.errors import ConfigError, WeightsError
from percalign.execution.backends import RayBackend
from percalign.study.pipeline import LEDGER, run_study
from percalign.study.spec import load_spec

STEPS = 60  # about half a second per task: long enough to be killed while it runs
CHUNKED = "[tasks]\ntargets = 2\n"  # 4 chunks of 2 targets (one batch of 4 IRIs) per run


@pytest.fixture(scope="module")
def ray_session():
    import ray

    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit 107 bytes
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        ignore_reinit_error=True,
        log_to_driver=False,
        _temp_dir=temp,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_study) -> Path:
    """The study run whole (one task per run) on the local backend."""
    folder = tmp_path_factory.mktemp("local") / "s"
    run_study(load_spec(small_study(folder, steps=STEPS)), folder, log=lambda _m: None)
    return folder


def _ray_tasks(prefix: str) -> list[tuple[int, str]]:
    """(pid, title) of the Ray worker processes running a task whose name starts with prefix."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode().strip()
        except OSError:
            continue
        if title.startswith(f"ray::{prefix}"):
            found.append((int(entry.name), title))
    return found


def _no_duplicates(folder: Path) -> None:
    ledger = json.loads((folder / LEDGER).read_text())["steps"]
    for run in (folder / "runs").iterdir():
        manifest = json.loads((run / "manifest.json").read_text())
        iris = [r["iri"] for r in manifest["iris"]]
        assert len(iris) == len(set(iris)) == 16
        assert len(list((run / "iris").iterdir())) == 16
        table = (run / "judgments.csv").read_text().splitlines()
        assert len(table) == 1 + 16 * 2 and len(set(table)) == len(table)
        assert ledger[f"invert:{run.name}"]["backend"] == "ray"
    assert not [p for p in folder.rglob(".*") if ".tmp" in p.name or ".old-" in p.name]


def test_ray_writes_the_same_files_as_local_and_shows_task_progress(
    ray_session, reference, tmp_path, small_study, study_digest, capsys
):
    spec = small_study(tmp_path / "s", steps=STEPS, extra=CHUNKED)
    assert main(["study", "run", str(spec), "--backend", "ray"]) == 0
    err = capsys.readouterr().err
    assert "Step invert: 10 task(s) on the ray backend" in err
    assert "invert tasks" in err and "10/10" in err and "elapsed" in err  # lines: no TTY
    assert "judge tasks" in err and "2/2" in err
    assert study_digest(tmp_path / "s") == study_digest(reference)
    _no_duplicates(tmp_path / "s")
    # a second run finds everything done and starts no task
    assert main(["study", "run", str(spec), "--backend", "ray"]) == 0
    assert "task(s)" not in capsys.readouterr().err


@contextmanager
def killing_one_inversion_task() -> Iterator[list[tuple[int, str]]]:
    """SIGKILL the first Ray worker seen running an inversion task; yields [(pid, title)]."""
    killed: list[tuple[int, str]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            running = _ray_tasks("invert ")
            if running:
                os.kill(running[0][0], signal.SIGKILL)
                killed.append(running[0])
                return
            time.sleep(0.005)

    killer = threading.Thread(target=watch, daemon=True)
    killer.start()
    try:
        yield killed
    finally:
        stop.set()
        killer.join()
    assert killed, "no inversion task was seen running"


class RecordingRayBackend(RayBackend):
    """The Ray backend, noting which process computed each task's output."""

    computed_by: list[tuple[str, int]]

    def run(self, tasks):
        for task, output in super().run(tasks):
            self.computed_by.append((task.label, output.pid))
            yield task, output


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_retried_and_changes_nothing(
    ray_session, reference, tmp_path, small_study, study_digest
):
    spec = load_spec(small_study(tmp_path / "k", steps=STEPS, extra=CHUNKED))
    backend = RecordingRayBackend(retries=2)
    backend.computed_by = []
    events = []
    with killing_one_inversion_task() as killed:
        pipeline = run_study(
            spec, tmp_path / "k", log=lambda _m: None, backend=backend, on_task=events.append
        )
    # the killed task was computed once more, by another process, and counted once
    pid, label = killed[0][0], killed[0][1].removeprefix("ray::")
    computed = [p for lab, p in backend.computed_by if lab == label]
    assert len(computed) == 1 and computed[0] != pid
    finished = [e.label for e in events if e.done > 0]
    assert len(finished) == len(set(finished)) == 12
    assert sorted(pipeline.executed) == sorted(set(pipeline.executed))
    assert study_digest(tmp_path / "k") == study_digest(reference)
    _no_duplicates(tmp_path / "k")


@pytest.mark.slow
def test_without_retries_a_killed_task_stops_the_study_in_one_line(
    ray_session, tmp_path, small_study, capsys
):
    folder = tmp_path / "k"
    spec = small_study(folder, steps=STEPS, extra=CHUNKED + "retries = 0\n")
    with killing_one_inversion_task() as killed:
        assert main(["study", "run", str(spec), "--backend", "ray"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    label = killed[0][1].removeprefix("ray::")
    assert f"Task {label!r} failed on Ray after 0 retries" in err[-1]
    assert "run the study again to resume" in err[-1]
    run = folder / "runs" / f"{label.split()[1]}__regularizer-free"
    assert not run.exists()  # its run folder was never written, not even in part


def test_a_percalign_error_in_a_task_comes_back_as_itself(ray_session, wrong_weights_task):
    with RayBackend() as backend, pytest.raises(WeightsError) as info:
        list(backend.run([wrong_weights_task]))
    assert "other weights here" in str(info.value) and "\n" not in str(info.value)


def test_tasks_that_no_machine_can_take_are_refused(ray_session, tmp_path, small_study):
    spec = small_study(tmp_path / "s", steps=1, extra="[tasks]\ngpus = 1\n")
    assert main(["study", "run", str(spec), "--backend", "ray"]) == 1
    assert not (tmp_path / "s" / "runs").exists()
    with RayBackend(cpus=3) as backend, pytest.raises(ConfigError, match="has 3 CPUs and 0 GPUs"):
        backend.device("auto")


def test_without_ray_the_backend_names_the_install_command(
    monkeypatch, tmp_path, small_study, capsys
):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without ray sees
    spec = small_study(tmp_path / "s", steps=1)
    assert main(["study", "run", str(spec), "--backend", "ray"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'percalign[ray]'" in err[0]
    assert not (tmp_path / "s" / "runs").exists()


def test_bad_backend_options_are_one_line_errors(tmp_path, small_study, capsys):
    spec = small_study(tmp_path / "s", steps=1)
    assert main(["study", "run", str(spec), "--address", "auto"]) == 1
    assert "--address is for the Ray backend" in capsys.readouterr().err
    assert main(["study", "run", str(spec), "--backend", "dask"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'dask'" in err[0]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="Ray would find the GPUs")
def test_cuda_on_a_cluster_without_gpus_is_refused(ray_session):
    with RayBackend() as backend, pytest.raises(ConfigError, match="Ray cluster has no GPUs"):
        backend.device("cuda")
