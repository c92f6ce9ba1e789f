"""The study's units of work as tasks that run anywhere: they compute and return data only.

An inversion run (one model x loss) is split into *parts*, one per layer objective and chunk
of targets. Each part calls :func:`~percalign.inversion.invert` on the whole target set with
``only_targets``/``only_objectives``, so it computes bitwise what the whole call computes for
its IRIs; :func:`merge` puts the parts back together in the whole call's order. The validity
null of each objective and the judging of a run are tasks too. A task gets plain data
(tensors, settings, a :class:`ModelRef`), loads what it needs where it runs, and returns an
:class:`Output`; the driver (``study.pipeline``) writes every file, once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from percalign.errors import WeightsError
from percalign.inversion import InversionConfig, InversionResult, Progress, invert
from percalign.inversion.config import Objective, parse_objectives
from percalign.inversion.validity import NullDistribution, null_distribution
from percalign.models.model import Model

__all__ = [
    "ModelRef",
    "Output",
    "Task",
    "adversary",
    "invert_part",
    "job_key",
    "judge_part",
    "merge",
    "null_part",
    "target_chunks",
    "train_part",
    "validity_null",
]


def job_key(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts``: equal parts, equal key.

    >>> job_key("judge", 1) == job_key("judge", 1) != job_key("judge", 2)
    True
    """
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class ModelRef:
    """How a task finds the driver's model: its name and weights, checked by their hash."""

    name: str
    weights: str | None
    sha256: str


#: what tasks get: the model itself (tasks in the driver's process) or how to load it
ModelSource = Model | ModelRef


@dataclass(frozen=True)
class Task:
    """One unit of work, ``fn(*args, **kwargs)``.

    Attributes:
        key: the job key: a hash of everything the result depends on. Equal keys give equal
            results, so a task that is retried, or asked for twice, is used once.
        label: what it does, for progress and as the Ray task name.
        fn: a module-level function (importable on every worker) returning an :class:`Output`.
        args: positional arguments; large ones shared by several tasks are sent once.
        kwargs: small keyword arguments.
    """

    key: str
    label: str
    fn: Callable[..., Output]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    """What a task returns: its value, the seconds it computed, its device and process."""

    value: Any
    seconds: float
    device: str
    pid: int


def target_chunks(
    n_targets: int, per_task: int, iris_per_target: int, batch_size: int
) -> list[list[int]]:
    """Contiguous chunks of ``range(n_targets)``, about ``per_task`` targets each (0: one chunk).

    The size is rounded up so that a chunk's IRIs fill whole optimizer batches (a multiple of
    ``batch_size / gcd(batch_size, iris_per_target)`` targets): then no batch is split
    between two tasks and no IRI is optimized twice.

    >>> target_chunks(10, 3, 2, 4)
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> target_chunks(10, 0, 2, 4)
    [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]
    """
    if per_task <= 0 or per_task >= n_targets:
        return [list(range(n_targets))]
    whole = batch_size // math.gcd(batch_size, iris_per_target)
    size = -(-per_task // whole) * whole
    return [list(range(s, min(s + size, n_targets))) for s in range(0, n_targets, size)]


def merge(parts: Sequence[InversionResult]) -> InversionResult:
    """One result from parts of one call, given in the call's row order (objective, target)."""
    first = parts[0]
    lambdas: dict[str, float] = {}
    for part in parts:
        lambdas.update(part.extra.get("adversarial_lambda", {}))

    def cat(name: str) -> torch.Tensor:
        return torch.cat([getattr(p, name) for p in parts])

    def join(name: str) -> list[Any]:
        return [x for p in parts for x in getattr(p, name)]

    return InversionResult(
        iris=cat("iris"),
        seeds=cat("seeds"),
        targets=first.targets,
        target_index=cat("target_index"),
        seed_kind=join("seed_kind"),
        seed_copy=join("seed_copy"),
        seed_source=join("seed_source"),
        objective=join("objective"),
        distance=cat("distance"),
        layer_distance={
            k: torch.cat([p.layer_distance[k] for p in parts]) for k in first.layer_distance
        },
        seed_distance=cat("seed_distance"),
        steps_taken=cat("steps_taken"),
        first_valid_step=cat("first_valid_step"),
        at_zero=cat("at_zero"),
        at_one=cat("at_one"),
        curve_steps=first.curve_steps,
        curves=cat("curves"),
        config=first.config,
        extra={"adversarial_lambda": lambdas} if lambdas else {},
    )


# One model, one judge set and one perceptual loss are kept per worker process, so a worker that
# runs several tasks of the same model loads it once (and never holds many models in GPU memory).
_CACHE: dict[str, tuple[Any, Any]] = {}


def _cached(slot: str, key: Any, make: Callable[[], Any]) -> Any:
    held = _CACHE.get(slot)
    if held is None or held[0] != key:
        _CACHE.pop(slot, None)
        _CACHE[slot] = (key, make())
    return _CACHE[slot][1]


def _resolve(device: str) -> str:
    from percalign._device import resolve_device

    return resolve_device(device, "the task's device")


def _model(ref: ModelSource, device: str) -> Model:
    if isinstance(ref, Model):
        return ref

    def load() -> Model:
        from percalign.models import load as load_model

        model = load_model(ref.name, weights=ref.weights, device=device)
        if model.weights_sha256 != ref.sha256:
            raise WeightsError(
                f"Model {ref.name!r} has other weights here (sha256 {model.weights_sha256[:12]}) "
                f"than on the driver ({ref.sha256[:12]}); give every machine the same zoo and "
                "weights files."
            )
        return model

    return _cached("model", (ref, device), load)


def _timed(device: str, work: Callable[[], Any]) -> Output:
    started = time.perf_counter()
    value = work()
    return Output(value, time.perf_counter() - started, device, os.getpid())


def adversary(name: str, device: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The adversarial loss's perceptual distance, the judge ``name``; one per process, kept
    for the tasks that follow (so building it first checks it before any work)."""
    from percalign.judges.registry import get_adversary

    return _cached("adversary", (name, device), lambda: get_adversary(name, device))  # type: ignore[no-any-return]


def validity_null(
    model: Model,
    pool: torch.Tensor,
    objective: Objective,
    config: InversionConfig,
    percentile: float,
) -> NullDistribution:
    """The validity null of ``objective`` over ``pool``, with the inversion's seed and norm.

    ``pool`` holds (N, C, H, W) natural images in [0, 1] in the model's channel count.
    """
    return null_distribution(
        model,
        pool,
        objective,
        percentile=percentile,
        seed=config.seed,
        p=config.p,
        token_pool=config.token_pool,
    )


def invert_part(
    ref: ModelSource,
    targets: torch.Tensor,
    labels: torch.Tensor | None,
    null_pool: torch.Tensor | None = None,
    *,
    layers: Sequence[str],
    seeds: str,
    config: InversionConfig,
    only_targets: Sequence[int] | None = None,
    only_objectives: Sequence[int] | None = None,
    device: str = "auto",
    progress: Callable[[Progress], None] | None = None,
    percentile: float = 1.0,
) -> Output:
    """Invert one part of a run; the value is an :class:`InversionResult` of its rows.

    Args:
        ref: the model, or how to load it (the same weights are checked by their hash).
        targets: (T, C, H, W) every target of the run, in [0, 1] and the model's channels.
        labels: (T,) their labels, if known.
        null_pool: natural images (N, C, H, W) for the validity null, with ``percentile``:
            its thresholds let the engine record when each IRI passes (and stop there if the
            config says so). It is the null of the run's null task, recomputed: it is cheap.
        layers, seeds, config: as in :func:`~percalign.inversion.invert`, for the whole run.
        only_targets, only_objectives: this part (see :func:`~percalign.inversion.invert`).
        device: ``auto`` (the GPU when one is visible, else the CPU), ``cpu``, ``cuda``...
        progress: the engine's progress callback (in-process backends only).
    """
    device = _resolve(device)
    model = _model(ref, device)

    def work() -> InversionResult:
        thresholds = {}
        if null_pool is not None:
            for objective in parse_objectives(list(layers)):
                null = validity_null(model, null_pool, objective, config, percentile)
                thresholds[objective.name] = null.threshold
        perceptual = adversary(config.adversary, device) if config.loss_spec.adversarial else None
        return invert(
            model,
            targets,
            layers=list(layers),
            seeds=seeds,
            config=config,
            labels=labels,
            perceptual=perceptual,
            progress=progress,
            only_targets=only_targets,
            only_objectives=only_objectives,
            thresholds=thresholds,
        )

    return _timed(device, work)


def null_part(
    ref: ModelSource,
    pool: torch.Tensor,
    objective: Objective,
    config: InversionConfig,
    percentile: float,
    device: str = "auto",
) -> Output:
    """The validity null of one objective; the value is a ``NullDistribution``."""
    device = _resolve(device)
    model = _model(ref, device)
    return _timed(device, lambda: validity_null(model, pool, objective, config, percentile))


def judge_part(run: Any, settings: Any, seed: int, device: str = "auto") -> Output:
    """Judge the IRIs of one run (a ``RunImages``) as ``settings`` say (a
    :class:`~percalign.judges.JudgeSettings`: the judges, k); the value is the judgments
    table."""
    from percalign.judges.metric import judge_run

    device = _resolve(device)
    judges = _cached(
        "judges", (tuple(settings.names), device), lambda: settings.judges(device=device)
    )
    return _timed(device, lambda: judge_run(run, judges, k=settings.k, seed=seed))


def train_part(cfg: Any, device: str = "auto") -> Output:
    """Train one model (a ``TrainConfig``); the value is ``(network, metadata, snapshots)``
    as :func:`~percalign.training.train` returns them, for the driver to save in the zoo."""
    from percalign.training import train

    device = _resolve(device)
    return _timed(device, lambda: train(cfg, device=device))
