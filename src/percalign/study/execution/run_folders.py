"""The units of work every front end shares: invert a set of images into a run folder, judge one.

``percalign invert`` / ``judge``, the trust analysis and the study pipeline (local or Ray) all
call these, so a run folder means the same thing wherever it was made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from percalign.data.images import ImageSet, to_channels
from percalign.inversion import (
    InversionConfig,
    InversionResult,
    Objective,
    Progress,
    invert,
    null_distribution,
    parse_objectives,
)
from percalign.inversion.validity import NullDistribution
from percalign.judges.base import Judge
from percalign.judges.metric import judge_run
from percalign.models.model import Model
from percalign.store.runs import read_run, save_run, write_table

__all__ = ["JUDGMENTS", "invert_images", "judge_folder", "save_inversion", "validity_null"]

JUDGMENTS = "judgments.csv"


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
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> tuple[InversionResult, dict[str, NullDistribution]]:
    """Invert ``model`` on ``targets`` and save the run folder ``out`` (atomically).

    Args:
        out: the run folder to write.
        model: the model to invert.
        targets: target images (any channel count; converted to the model's).
        layers: layer objectives (``penultimate``, ``0.5*layer3+layer4``...).
        seeds: seed types (see :func:`percalign.inversion.parse_seeds`).
        config: inversion settings (default: ``InversionConfig()``).
        null_pool: natural images whose pairwise distances make the validity null (computed
            first, so the engine records when each IRI passes and can stop there); no
            validity flags without it.
        validity_percentile: the percentile of the null below which an IRI is valid.
        progress: the engine's progress callback.
        perceptual: the adversarial loss's perceptual distance (default: the judge
            ``config.adversary`` when the loss family needs one).
        overwrite: replace ``out`` if it exists.
        extra: further manifest entries (an ``images`` mapping adds to the image record).

    Returns:
        The inversion result and the validity null per objective.
    """
    config = config or InversionConfig()
    objectives = parse_objectives(list(layers))
    for objective in objectives:
        for layer in objective.layers:
            model.resolve_layer(layer)
    nulls: dict[str, NullDistribution] = {}
    if null_pool is not None:
        pool = to_channels(null_pool.images, model.spec.in_chans)
        nulls = {
            o.name: validity_null(model, pool, o, config, validity_percentile) for o in objectives
        }
    started = time.perf_counter()
    result = invert(
        model,
        to_channels(targets.images, model.spec.in_chans),
        layers=[o.name for o in objectives],
        seeds=seeds,
        config=config,
        labels=targets.labels,
        progress=progress,
        perceptual=perceptual,
        thresholds={name: null.threshold for name, null in nulls.items()},
    )
    elapsed = time.perf_counter() - started
    save_inversion(
        out,
        result,
        model=model,
        targets=targets,
        nulls=nulls,
        seeds=seeds,
        null_images=0 if null_pool is None else len(null_pool),
        elapsed=elapsed,
        device=str(model.device),
        overwrite=overwrite,
        extra=extra,
    )
    return result, nulls


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


def save_inversion(
    out: Path,
    result: InversionResult,
    *,
    model: Model,
    targets: ImageSet,
    nulls: dict[str, NullDistribution],
    seeds: str,
    null_images: int,
    elapsed: float,
    device: str,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save ``result`` (of ``model`` on ``targets``) as the run folder ``out``, atomically.

    Args:
        elapsed: seconds the inversion took (summed over its parts when it was split).
        device: where it ran.
        extra: further manifest entries (an ``images`` mapping adds to the image record).
        The rest: as in :func:`invert_images`.
    """
    extra = dict(extra or {})
    return save_run(
        out,
        result,
        model=model,
        target_ids=targets.ids,
        target_labels=None if targets.labels is None else targets.labels.tolist(),
        nulls=nulls,
        overwrite=overwrite,
        extra={
            **extra,
            "images": {
                "source": targets.source,
                "n": len(targets),
                "size": list(targets.images.shape[-2:]),
                "null_images": null_images,
                **extra.get("images", {}),
            },
            "seeds": seeds,
            "elapsed_seconds": round(elapsed, 3),
            "device": device,
        },
    )


def judge_folder(
    folder: Path, judges: Sequence[Judge], *, k: int = 4, seed: int = 0
) -> pd.DataFrame:
    """Judge every IRI of run ``folder``; writes ``folder/judgments.csv`` and returns it."""
    table = judge_run(read_run(folder), judges, k=k, seed=seed)
    write_table(table, Path(folder) / JUDGMENTS)
    return table
