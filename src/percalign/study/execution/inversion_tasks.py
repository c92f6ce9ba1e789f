"""The invert step cut into tasks, and their outputs put back into run folders (driver side).

A run folder (one model x loss) becomes one validity-null task per layer objective and one
inversion task per objective and chunk of targets (``[tasks] targets``). Every task has a job
key made from the run's step key and its part, so the same part always has the same key.
When all of a run's tasks are in, :func:`save_inversion_run` merges the parts in the whole
call's order and writes the folder once (atomically).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from percalign.data import ImageSet, choose, load_images, to_channels
from percalign.inversion import Progress, parse_objectives, parse_seeds
from percalign.models.model import Model
from percalign.study.execution.tasks import (
    ModelSource,
    Output,
    Task,
    invert_part,
    merge,
    null_part,
    target_chunks,
)
from percalign.study.ledger import step_key
from percalign.study.spec import StudySpec

__all__ = ["InversionRun", "inversion_tasks", "save_inversion_run", "target_images"]


@dataclass
class InversionRun:
    """One run folder of the invert step: the job keys of its tasks and what saving needs."""

    step: str
    key: str
    folder: Path
    name: str
    model: Model
    targets: ImageSet
    null_images: int
    parts: list[str] = field(default_factory=list)
    nulls: dict[str, str] = field(default_factory=dict)
    written: bool = False

    def ready(self, outputs: dict[str, Output]) -> bool:
        """Whether every task of the run is in ``outputs`` and the run is not written yet."""
        keys = [*self.nulls.values(), *self.parts]
        return not self.written and all(k in outputs for k in keys)


def target_images(spec: StudySpec, model: Model) -> tuple[ImageSet, torch.Tensor, torch.Tensor]:
    """The study's targets for ``model``: the set, its pixels and the validity pool's pixels.

    Both tensors are (N, C, H, W) in [0, 1] in the model's input size and channel count.
    """
    images, seed = spec.images, spec.study.seed
    every = load_images(images.source, size=model.spec.input_size, split=images.split)
    targets = choose(every, min(images.n, len(every)), seed)
    pool = choose(every, min(images.null_images, len(every)), seed + 1)
    chans = model.spec.in_chans
    return targets, to_channels(targets.images, chans), to_channels(pool.images, chans)


def inversion_tasks(
    spec: StudySpec,
    run: InversionRun,
    source: ModelSource,
    loss: str,
    images: tuple[ImageSet, torch.Tensor, torch.Tensor],
    *,
    device: str,
    progress: Callable[[Progress], None] | None = None,
) -> list[Task]:
    """The tasks of one run (filling in ``run.parts`` and ``run.nulls``).

    Args:
        spec: the study.
        run: the run folder; its model is checked for every layer first.
        source: what tasks get: the model (tasks in this process) or a :class:`ModelRef`.
        loss: the run's loss family.
        images: from :func:`target_images` (the same objects for every run of a model, so a
            backend sends them once).
        device: the device tasks use.
        progress: the engine's progress callback (in-process backends only).
    """
    inv, seed = spec.inversion, spec.study.seed
    objectives = parse_objectives(inv.layers)
    for objective in objectives:
        for layer in objective.layers:
            run.model.resolve_layer(layer)
    targets, pixels, pool = images
    config = inv.config(loss, seed)
    seeds = inv.seeds_for(loss)
    per_target = sum(s.count for s in parse_seeds(seeds))
    chunks = target_chunks(len(targets), spec.tasks.targets, per_target, inv.batch_size)
    tasks = []
    for o, objective in enumerate(objectives):
        null_key = step_key(
            "null",
            run.name,
            run.model.weights_sha256,
            objective.name,
            dataclasses.asdict(spec.images),
            inv.validity_percentile,
            seed,
            config.p,
            config.token_pool,
        )
        run.nulls[objective.name] = null_key
        tasks.append(
            Task(
                null_key,
                f"null {run.name} {objective.name}",
                null_part,
                (source, pool, objective, config, inv.validity_percentile),
                {"device": device},
            )
        )
        for chunk in chunks:
            part = Task(
                step_key(run.key, o, chunk),
                f"invert {run.name} {loss} {objective.name} targets {chunk[0]}-{chunk[-1]}",
                invert_part,
                (source, pixels, targets.labels, pool),
                {
                    "layers": [ob.name for ob in objectives],
                    "seeds": seeds,
                    "config": config,
                    "only_targets": None if len(chunks) == 1 else chunk,
                    "only_objectives": None if len(objectives) == 1 else [o],
                    "device": device,
                    "progress": progress,
                    "percentile": inv.validity_percentile,
                },
            )
            run.parts.append(part.key)
            tasks.append(part)
    return tasks


def save_inversion_run(
    spec: StudySpec, run: InversionRun, outputs: dict[str, Output], backend: str
) -> float:
    """Merge the run's parts, write its folder once; return the seconds its parts computed."""
    from percalign.study.execution.run_folders import save_inversion

    parts = [outputs[k] for k in run.parts]
    seconds = sum(p.seconds for p in parts)
    result = merge([p.value for p in parts])
    save_inversion(
        run.folder,
        result,
        model=run.model,
        targets=run.targets,
        nulls={name: outputs[k].value for name, k in run.nulls.items()},
        seeds=spec.inversion.seeds_for(result.config.loss),
        null_images=run.null_images,
        elapsed=seconds,
        device=parts[0].device,
        overwrite=True,
        extra={
            "images": {"split": spec.images.split},
            "command": "percalign study run",
            "tasks": {"backend": backend, "inversion_parts": len(parts)},
        },
    )
    run.written = True
    return seconds
