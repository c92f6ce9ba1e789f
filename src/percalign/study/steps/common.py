"""What several steps of a study share: the runs (model x loss) and their folders, the
device the model steps ask for, and handing tasks to the backend (local or Ray).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign.store.runs import slug
from percalign.study.graph import Inputs
from percalign.study.spec import StudySpec

if TYPE_CHECKING:
    from percalign.execution.backends import Backend
    from percalign.execution.tasks import Task

__all__ = [
    "model_device",
    "model_id",
    "model_spec",
    "open_backend",
    "requested_device",
    "run_folder",
    "run_folders",
    "run_spec",
    "run_tasks",
    "runs",
]


def run_folders(spec: StudySpec, folder: Path) -> dict[str, tuple[str, str, Path]]:
    """Every run of the study: ``MODEL__LOSS`` -> (model, loss, its folder)."""
    return {
        f"{slug(m.name)}__{slug(loss)}": (
            m.name,
            loss,
            folder / "runs" / f"{slug(m.name)}__{slug(loss)}",
        )
        for m in spec.models
        for loss in spec.inversion.losses
    }


def requested_device(spec: StudySpec) -> str:
    """The device asked for the model steps: ``[inversion] device``, else ``[study]``'s."""
    return spec.inversion.device or spec.study.device


def model_device(spec: StudySpec) -> str:
    from percalign._device import resolve_device

    what = "[inversion] device" if spec.inversion.device else "[study] device"
    return resolve_device(requested_device(spec), what)


def open_backend(inputs: Inputs) -> Backend:
    backend = inputs.context.backend
    if backend is None:
        raise RuntimeError("the backend is opened by Pipeline.run")
    return backend


def run_tasks(inputs: Inputs, step: str, tasks: list[Task], finished: Any) -> None:
    """Run ``tasks`` on the backend; call ``finished`` once per job key, as each ends."""
    from percalign.execution.backends import TaskProgress

    backend, on_task = open_backend(inputs), inputs.context.on_task
    unique = list({task.key: task for task in tasks}.values())  # asked twice, run once
    inputs.log(f"Step {step}: {len(unique)} task(s) on the {backend.name} backend")
    if on_task is not None:
        on_task(TaskProgress(step, 0, len(unique), "", 0.0))
    done: set[str] = set()
    for task, output in backend.run(unique):
        if task.key in done:
            continue
        done.add(task.key)
        if on_task is not None:
            on_task(TaskProgress(step, len(done), len(unique), task.label, output.seconds))
        finished(task, output)


def model_spec(spec: StudySpec, name: str) -> StudySpec:
    """The spec as the instance of model ``name`` sees it: that ``[[models]]`` entry alone."""
    return dataclasses.replace(spec, models=tuple(m for m in spec.models if m.name == name))


def runs(inputs: Inputs) -> list[str]:
    return list(run_folders(inputs.spec, inputs.folder))


def run_spec(spec: StudySpec, part: str) -> StudySpec:
    """The spec as run ``part`` (``MODEL__LOSS``) sees it: its model and its loss alone."""
    name, loss, _ = run_folders(spec, Path())[part]
    inv = spec.inversion
    seeds = {loss: inv.loss_seeds[loss]} if inv.loss_seeds and loss in inv.loss_seeds else None
    inversion = dataclasses.replace(inv, losses=[loss], loss_seeds=seeds)
    return dataclasses.replace(model_spec(spec, name), inversion=inversion)


def model_id(inputs: Inputs, part: str) -> tuple[Any, ...]:
    """What identifies the model of run ``part`` besides its settings: its weights and their
    SHA-256."""
    return (inputs.value("models").id(run_folders(inputs.spec, inputs.folder)[part][0]),)


def run_folder(inputs: Inputs, part: str) -> Path:
    return run_folders(inputs.spec, inputs.folder)[part][2]
