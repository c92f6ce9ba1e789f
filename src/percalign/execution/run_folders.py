"""Run folders, made one way: an inversion described once, cut into tasks, written back once.

``percalign invert``, the trust analysis and the study's invert step (local or Ray) all make a
run folder through this module, so a run folder means the same thing wherever it was made:

- an :class:`InversionRun` says what to invert (model, targets, layers, seeds, settings, the
  validity null's images) and where to write it;
- :func:`inversion_tasks` cuts it into one validity-null task per layer objective and one
  inversion task per objective and chunk of targets, each with a job key made from the run's
  key and its part (the same part always has the same key);
- :func:`save_inversion_run` merges the parts in the whole call's order and writes the folder
  once (atomically);
- :func:`invert_images` does the three in this process (the command and the trust analysis);
  the study's invert step hands the tasks to its backend instead.

:func:`judge_folder` judges a run folder's IRIs into its ``judgments.csv``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from percalign.data.images import ImageSet, to_channels
from percalign.execution.tasks import (
    ModelSource,
    Output,
    Task,
    invert_part,
    job_key,
    merge,
    null_part,
    target_chunks,
)
from percalign.inversion import (
    InversionConfig,
    InversionResult,
    Objective,
    Progress,
    parse_objectives,
    parse_seeds,
)
from percalign.inversion.validity import NullDistribution
from percalign.judges.base import Judge
from percalign.judges.metric import judge_run
from percalign.models.model import Model
from percalign.store.runs import read_run, save_run, write_table

__all__ = [
    "JUDGMENTS",
    "InversionRun",
    "check_inversion",
    "inversion_tasks",
    "invert_images",
    "judge_folder",
    "save_inversion_run",
]

JUDGMENTS = "judgments.csv"


@dataclass
class InversionRun:
    """One run folder to make: what to invert, and the job keys of its tasks once cut.

    Attributes:
        folder: the run folder to write.
        model: the model to invert.
        targets: target images (any channel count; converted to the model's).
        layers: layer objectives (``penultimate``, ``0.5*layer3+layer4``...).
        seeds: seed types (see :func:`percalign.inversion.parse_seeds`).
        config: inversion settings.
        null_pool: natural images whose pairwise distances make the validity null (so the
            engine records when each IRI passes, and can stop there); None: no validity flags.
        percentile: the percentile of the null below which an IRI is valid.
        targets_per_task: about this many targets per inversion task (0: one task per layer
            objective); see :func:`~percalign.execution.tasks.target_chunks`.
        key: what the run's job keys are made from (default: a hash of the above).
        name: the model's name in task labels (default: the model's own).
    """

    folder: Path
    model: Model
    targets: ImageSet
    layers: Sequence[str] = ("penultimate",)
    seeds: str = "super-noise"
    config: InversionConfig = field(default_factory=InversionConfig)
    null_pool: ImageSet | None = None
    percentile: float = 1.0
    targets_per_task: int = 0
    key: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list, init=False)
    nulls: dict[str, str] = field(default_factory=dict, init=False)
    written: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.name = self.name or self.model.spec.name
        self.key = self.key or job_key(
            "invert",
            self.name,
            self.model.weights_sha256,
            self.targets.source,
            self.targets.ids,
            list(self.layers),
            self.seeds,
            self.config.to_dict(),
            self.percentile,
            None if self.null_pool is None else self.null_pool.ids,
        )

    def ready(self, outputs: dict[str, Output]) -> bool:
        """Whether every task of the run is in ``outputs`` and the run is not written yet."""
        keys = [*self.nulls.values(), *self.parts]
        return not self.written and all(k in outputs for k in keys)


def check_inversion(model: Model, layers: Sequence[str], seeds: str) -> list[Objective]:
    """The layer objectives of ``layers``, each layer found in ``model`` and every seed type
    known; a bad one is refused (one line, close matches named)."""
    objectives = parse_objectives(list(layers))
    for objective in objectives:
        for layer in objective.layers:
            model.resolve_layer(layer)
    parse_seeds(seeds)
    return objectives


def inversion_tasks(
    run: InversionRun,
    source: ModelSource | None = None,
    *,
    device: str,
    progress: Callable[[Progress], None] | None = None,
) -> list[Task]:
    """The tasks of one run (filling in ``run.parts`` and ``run.nulls``).

    Every layer and seed type is checked first, so a bad one fails before any work.

    Args:
        run: the run; its targets and null pool should be the same objects for every run of
            a model (then a backend sends their pixels once).
        source: what tasks get: the model (tasks in this process; the default) or a
            :class:`~percalign.execution.tasks.ModelRef`.
        device: the device tasks use.
        progress: the engine's progress callback (in-process backends only).
    """
    model, config = run.model, run.config
    objectives = check_inversion(model, run.layers, run.seeds)
    per_target = sum(s.count for s in parse_seeds(run.seeds))
    chans = model.spec.in_chans
    pixels = to_channels(run.targets.images, chans)
    pool = None if run.null_pool is None else to_channels(run.null_pool.images, chans)
    chunks = target_chunks(len(run.targets), run.targets_per_task, per_target, config.batch_size)
    source = model if source is None else source
    tasks = []
    for o, objective in enumerate(objectives):
        if run.null_pool is not None:
            null_key = job_key(
                "null",
                run.name,
                model.weights_sha256,
                run.null_pool.source,
                run.null_pool.ids,
                objective.name,
                run.percentile,
                config.seed,
                config.p,
                config.token_pool,
            )
            run.nulls[objective.name] = null_key
            tasks.append(
                Task(
                    null_key,
                    f"null {run.name} {objective.name}",
                    null_part,
                    (source, pool, objective, config, run.percentile),
                    {"device": device},
                )
            )
        for chunk in chunks:
            part = Task(
                job_key(run.key, o, chunk),
                f"invert {run.name} {config.loss} {objective.name} targets {chunk[0]}-{chunk[-1]}",
                invert_part,
                (source, pixels, run.targets.labels, pool),
                {
                    "layers": [ob.name for ob in objectives],
                    "seeds": run.seeds,
                    "config": config,
                    "only_targets": None if len(chunks) == 1 else chunk,
                    "only_objectives": None if len(objectives) == 1 else [o],
                    "device": device,
                    "progress": progress,
                    "percentile": run.percentile,
                },
            )
            run.parts.append(part.key)
            tasks.append(part)
    return tasks


def save_inversion_run(
    run: InversionRun,
    outputs: dict[str, Output],
    *,
    backend: str,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> tuple[InversionResult, float]:
    """Merge the run's parts and write its folder once.

    Args:
        run: the run, cut by :func:`inversion_tasks`.
        outputs: every task's output by job key (other runs' may be there too).
        backend: where the tasks ran (recorded in the manifest).
        overwrite: replace an existing folder.
        extra: further manifest entries (an ``images`` mapping adds to the image record).

    Returns:
        The merged result, and the seconds its parts computed.
    """
    parts = [outputs[k] for k in run.parts]
    seconds = sum(p.seconds for p in parts)
    result = merge([p.value for p in parts])
    extra = dict(extra or {})
    save_run(
        run.folder,
        result,
        model=run.model,
        target_ids=run.targets.ids,
        target_labels=None if run.targets.labels is None else run.targets.labels.tolist(),
        nulls={name: outputs[k].value for name, k in run.nulls.items()},
        overwrite=overwrite,
        extra={
            **extra,
            "images": {
                "source": run.targets.source,
                "n": len(run.targets),
                "size": list(run.targets.images.shape[-2:]),
                "null_images": 0 if run.null_pool is None else len(run.null_pool),
                **extra.get("images", {}),
            },
            "seeds": run.seeds,
            "elapsed_seconds": round(seconds, 3),
            "device": parts[0].device,
            "tasks": {"backend": backend, "inversion_parts": len(parts)},
        },
    )
    run.written = True
    return result, seconds


def invert_images(
    out: Path,
    model: Model,
    targets: ImageSet,
    *,
    layers: Sequence[str] = ("penultimate",),
    seeds: str = "super-noise",
    config: InversionConfig | None = None,
    null_pool: ImageSet | None = None,
    validity_percentile: float = 1.0,
    progress: Callable[[Progress], None] | None = None,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> tuple[InversionResult, dict[str, NullDistribution]]:
    """Invert ``model`` on ``targets`` into the run folder ``out``, here: the
    :class:`InversionRun` of these arguments, its tasks in order in this process on the model's
    device, then the folder, written once.

    Args:
        out, model, targets, layers, seeds, null_pool: as in :class:`InversionRun`.
        config: inversion settings (default: ``InversionConfig()``).
        validity_percentile: the percentile of the null below which an IRI is valid.
        progress: the engine's progress callback.
        overwrite: replace ``out`` if it exists.
        extra: further manifest entries (an ``images`` mapping adds to the image record).

    Returns:
        The inversion result and the validity null per objective (none without a null pool).
    """
    run = InversionRun(
        out,
        model,
        targets,
        layers=layers,
        seeds=seeds,
        config=config or InversionConfig(),
        null_pool=null_pool,
        percentile=validity_percentile,
    )
    tasks = inversion_tasks(run, device=str(model.device), progress=progress)
    outputs = {task.key: task.fn(*task.args, **task.kwargs) for task in tasks}
    result, _ = save_inversion_run(
        run, outputs, backend="in process", overwrite=overwrite, extra=extra
    )
    return result, {name: outputs[k].value for name, k in run.nulls.items()}


def judge_folder(
    folder: Path, judges: Sequence[Judge], *, k: int = 4, seed: int = 0
) -> pd.DataFrame:
    """Judge every IRI of run ``folder``; writes ``folder/judgments.csv`` and returns it."""
    table = judge_run(read_run(folder), judges, k=k, seed=seed)
    write_table(table, Path(folder) / JUDGMENTS)
    return table
