"""The invert step: one backend call for every run (model x loss) to do; each run folder is
written once, as its tasks come in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from percalign.store.runs import gate_warnings, read_manifest
from percalign.study.graph import Inputs
from percalign.study.steps.common import open_backend, requested_device, run_folders, run_tasks

if TYPE_CHECKING:
    from percalign.study.execution.tasks import Output, Task

__all__ = ["invert"]


def invert(inputs: Inputs, todo: list[str]) -> None:
    """One backend call for every run to do; each run folder written once its tasks are in."""
    from percalign.study.execution.inversion_tasks import (
        InversionRun,
        inversion_tasks,
        save_inversion_run,
        target_images,
    )
    from percalign.study.execution.tasks import ModelRef

    spec, models = inputs.spec, inputs.value("models")
    backend = open_backend(inputs)
    device = backend.device(requested_device(spec))
    runs_of = run_folders(spec, inputs.folder)
    data: dict[str, Any] = {}
    runs: list[InversionRun] = []
    tasks: list[Task] = []
    for part in todo:
        name, loss, folder = runs_of[part]
        model = models.models[name]
        if name not in data:  # one set per model: sent once for all its runs
            data[name] = target_images(spec, model)
        key = inputs.own_key(part)
        run = InversionRun(part, key, folder, name, model, data[name][0], len(data[name][2]))
        source = (
            model
            if backend.in_process
            else ModelRef(name, models.entries[name].weights, model.weights_sha256)
        )
        progress = inputs.context.progress if backend.in_process else None
        tasks += inversion_tasks(
            spec, run, source, loss, data[name], device=device, progress=progress
        )
        runs.append(run)
    outputs: dict[str, Output] = {}

    def finished(task: Task, output: Output) -> None:
        outputs[task.key] = output
        for run in runs:
            if run.ready(outputs):
                seconds = save_inversion_run(spec, run, outputs, backend.name)
                for line in gate_warnings(read_manifest(run.folder)):
                    inputs.log(f"Warning: {line}")
                tasks_of = len(run.parts) + len(run.nulls)
                inputs.finished(run.step, seconds, backend=backend.name, tasks=tasks_of)
                inputs.log(f"Step invert:{run.step}: done")

    run_tasks(inputs, "invert", tasks, finished)
