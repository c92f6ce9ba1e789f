"""The invert step: one backend call for every run (model x loss) to do; each run folder is
written once, as its tasks come in.

A run is the same :class:`~percalign.execution.run_folders.InversionRun` that ``percalign
invert`` makes, described from the spec: the study's targets and validity pool (one set per
model, shared by its runs), the loss's settings and seeds, ``[tasks] targets`` per task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from percalign.store.runs import gate_warnings, read_manifest
from percalign.study.graph import Inputs
from percalign.study.spec import StudySpec
from percalign.study.steps.common import open_backend, requested_device, run_folders, run_tasks

if TYPE_CHECKING:
    from percalign.data.images import ImageSet
    from percalign.execution.tasks import Output, Task
    from percalign.models.model import Model

__all__ = ["invert", "target_images"]


def target_images(spec: StudySpec, model: Model) -> tuple[ImageSet, ImageSet]:
    """The study's targets for ``model`` and the validity pool, in the model's input size and
    channel count."""
    from percalign.data import ImageSet, choose, load_images, to_channels

    images, seed = spec.images, spec.study.seed
    every = load_images(images.source, size=model.spec.input_size, split=images.split)

    def chosen(n: int, seed: int) -> ImageSet:
        part = choose(every, min(n, len(every)), seed)
        return ImageSet(
            to_channels(part.images, model.spec.in_chans), part.ids, part.labels, part.source
        )

    return chosen(images.n, seed), chosen(images.null_images, seed + 1)


def invert(inputs: Inputs, todo: list[str]) -> None:
    """One backend call for every run to do; each run folder written once its tasks are in."""
    from percalign.execution.run_folders import InversionRun, inversion_tasks, save_inversion_run
    from percalign.execution.tasks import ModelRef

    spec, models = inputs.spec, inputs.value("models")
    inv = spec.inversion
    backend = open_backend(inputs)
    device = backend.device(requested_device(spec))
    runs_of = run_folders(spec, inputs.folder)
    images: dict[str, Any] = {}
    runs: dict[str, InversionRun] = {}
    tasks: list[Task] = []
    for part in todo:
        name, loss, folder = runs_of[part]
        model = models.models[name]
        if name not in images:  # one set per model: sent once for all its runs
            images[name] = target_images(spec, model)
        targets, pool = images[name]
        runs[part] = run = InversionRun(
            folder,
            model,
            targets,
            layers=inv.layers,
            seeds=inv.seeds_for(loss),
            config=inv.config(loss, spec.study.seed),
            null_pool=pool,
            percentile=inv.validity_percentile,
            targets_per_task=spec.tasks.targets,
            key=inputs.own_key(part),
            name=name,
        )
        source = (
            model
            if backend.in_process
            else ModelRef(name, models.entries[name].weights, model.weights_sha256)
        )
        progress = inputs.context.progress if backend.in_process else None
        tasks += inversion_tasks(run, source, device=device, progress=progress)
    outputs: dict[str, Output] = {}

    def finished(task: Task, output: Output) -> None:
        outputs[task.key] = output
        for part, run in runs.items():
            if run.ready(outputs):
                _, seconds = save_inversion_run(
                    run,
                    outputs,
                    backend=backend.name,
                    overwrite=True,
                    extra={
                        "images": {"split": spec.images.split},
                        "command": "percalign study run",
                    },
                )
                for line in gate_warnings(read_manifest(run.folder)):
                    inputs.log(f"Warning: {line}")
                tasks_of = len(run.parts) + len(run.nulls)
                inputs.finished(part, seconds, backend=backend.name, tasks=tasks_of)
                inputs.log(f"Step invert:{part}: done")

    run_tasks(inputs, "invert", tasks, finished)
