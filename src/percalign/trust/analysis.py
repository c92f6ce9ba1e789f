"""The trust analysis end to end: predictions, IRIs of the disputed inputs, judges, the rule.

Output folder (``--out``)::

    predictions.csv   every input x model: label, prediction, max-softmax confidence
    runs/MODEL/       inversion run of the disputed inputs (same targets and seeds per model),
                      with judgments.csv
    scores.csv        alignment per input x model x source (judges; humans with a study)
    per_input.csv     per disputed input: predictions, alignments, each rule's pick, truth
    summary.csv       accuracy with 95% CI of the rule per source and of each baseline
    selected/, survey/  with ``select``: the least certain inputs and their survey
    trust.json        settings, models (weights hashes) and counts; written last
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from percalign import _provenance
from percalign.data.images import ImageSet, choose, load_images, to_channels
from percalign.errors import ConfigError, MissingFileError
from percalign.inversion import InversionConfig, Progress
from percalign.judges.base import Judge
from percalign.models.model import Model
from percalign.store.runs import atomic_folder, read_manifest, slug, subset_run, write_table
from percalign.study.tasks import invert_images, judge_folder
from percalign.trust.rule import disagreements, evaluate, human_scores, judge_scores
from percalign.trust.rule import select_uncertain as _select

__all__ = ["TrustResult", "analyze", "predict", "prediction_table"]

RESULT = "trust.json"


@dataclass(frozen=True)
class TrustResult:
    """What :func:`analyze` wrote (the tables are also in the folder)."""

    folder: Path
    predictions: pd.DataFrame
    scores: pd.DataFrame
    per_input: pd.DataFrame
    summary: pd.DataFrame
    selected: list[str] | None
    survey: Path | None


@torch.no_grad()
def predict(model: Model, images: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, ...]:
    """Predicted labels and max-softmax confidences of ``images`` (N, C, H, W) in [0, 1]."""
    model.module.eval()
    labels, confidence = [], []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(model.device)
        probs = model.logits(x).float().softmax(dim=1)
        conf, lab = probs.max(dim=1)
        labels.append(lab.cpu().numpy())
        confidence.append(conf.cpu().numpy())
    return np.concatenate(labels), np.concatenate(confidence)


def _inputs(model: Model, images: str, split: str, n: int | None, seed: int) -> ImageSet:
    found = load_images(images, size=model.spec.input_size, split=split)
    if found.labels is None:
        raise ConfigError(
            f"The trust analysis needs labelled images; {images!r} has no labels. Use "
            "digits, or a folder with one sub-folder per class."
        )
    chosen = found if n is None or n >= len(found) else choose(found, n, seed)
    return ImageSet(
        to_channels(chosen.images, model.spec.in_chans), chosen.ids, chosen.labels, images
    )


def prediction_table(models: Sequence[Model], inputs: Sequence[ImageSet]) -> pd.DataFrame:
    """One row per input x model (``models[i]`` sees ``inputs[i]``, the same ids in order)."""
    frames = []
    for model, images in zip(models, inputs, strict=True):
        if images.ids != inputs[0].ids:
            raise ConfigError("Every model must see the same inputs (same ids, same order).")
        labels, conf = predict(model, images.images)
        frames.append(
            pd.DataFrame(
                {
                    "input_id": images.ids,
                    "label": np.asarray(images.labels),
                    "model": model.spec.name,
                    "predicted": labels,
                    "confidence": conf,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _human(study: Path, runs: dict[str, Path]) -> pd.DataFrame:
    from percalign.scoring.exclusions import Exclusions, apply_exclusions
    from percalign.store.study import read_answers

    answers = read_answers(study)
    if answers.empty:
        raise MissingFileError(f"The study {str(study)!r} has no answers yet.")
    kept, _ = apply_exclusions(answers, Exclusions())
    iris = pd.DataFrame(
        [
            {"iri_sha256": r["iri_sha256"], "input_id": r["target_id"], "model": name}
            for name, folder in runs.items()
            for r in read_manifest(folder)["iris"]
        ]
    )
    scores = human_scores(kept, iris)
    if scores.empty:
        raise ConfigError(
            f"None of the answers in {str(study)!r} are about this analysis's IRIs (they are "
            "matched by their image hash); run trust with the settings the study was built "
            "from."
        )
    return scores


def analyze(
    out: Path,
    models: Sequence[Model],
    *,
    images: str = "digits",
    split: str = "test",
    n_images: int | None = None,
    judges: Sequence[Judge] = (),
    metric: str = "other_2afc",
    seeds: str = "image:2",
    layer: str = "penultimate",
    config: InversionConfig | None = None,
    study: Path | None = None,
    select: int | None = None,
    survey: dict[str, Any] | None = None,
    n_boot: int = 2000,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrustResult:
    """Which model to trust when models disagree, measured on labelled ``images``.

    Args:
        out: output folder (see the module docstring).
        models: two or more models; each sees the inputs at its own size and channels.
        images, split, n_images: the labelled inputs (all of the split by default).
        judges: automated judges of the IRIs.
        metric: ``other_2afc`` or ``seed_2afc`` (see :func:`percalign.trust.judge_scores`).
        seeds, layer, config: how the disputed inputs are inverted (one seed per target and
            seed copy, the same for every model: seeds depend on the target and
            ``config.seed`` only).
        study: a study folder whose answers (after the default exclusions) add the source
            ``humans``.
        select: build a survey of the this many least certain disputed inputs into
            ``out/survey``.
        survey: settings of :func:`percalign.survey.build_survey` for it.
        n_boot: bootstrap resamples of the CIs.
        overwrite: replace an existing ``out``.
        progress, log: the engine's progress callback; one-line stage messages.
    """
    say = log or (lambda _msg: None)
    config = config or InversionConfig(steps=500, optimizer="adam", schedule="cosine")
    if len(models) < 2:
        raise ConfigError(f"Trust needs two or more models; got {len(models)}.")
    names = [m.spec.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"Each model may appear once; got {names}.")
    if not judges and study is None:
        raise ConfigError("Give at least one judge (--judges) or a study with answers (--study).")
    if select is not None and not judges:
        raise ConfigError("--select ranks inputs by the judges' uncertainty; give --judges.")
    out = Path(out)
    with atomic_folder(out, overwrite) as tmp:
        tables = _analyze_into(
            tmp,
            models,
            names,
            images,
            split,
            n_images,
            judges,
            metric,
            seeds,
            layer,
            config,
            study,
            select,
            survey,
            n_boot,
            progress,
            say,
        )
    predictions, scores, per_input, summary, selected = tables
    return TrustResult(
        out,
        predictions,
        scores,
        per_input,
        summary,
        selected,
        None if selected is None else out / "survey",
    )


def _analyze_into(
    out: Path,
    models: Sequence[Model],
    names: list[str],
    images: str,
    split: str,
    n_images: int | None,
    judges: Sequence[Judge],
    metric: str,
    seeds: str,
    layer: str,
    config: InversionConfig,
    study: Path | None,
    select: int | None,
    survey: dict[str, Any] | None,
    n_boot: int,
    progress: Callable[[Progress], None] | None,
    say: Callable[[str], None],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str] | None]:
    started = time.perf_counter()
    inputs = [_inputs(m, images, split, n_images, config.seed) for m in models]
    predictions = prediction_table(models, inputs)
    write_table(predictions, out / "predictions.csv")
    disputed = disagreements(predictions)
    say(f"{len(disputed)} of {len(inputs[0])} inputs get different labels from {', '.join(names)}")
    if not disputed:
        raise ConfigError(
            "The models agree on every input, so there is nothing to decide; use more inputs "
            "(--n-images) or models that differ more."
        )
    runs: dict[str, Path] = {}
    frames = []
    for model, images_of in zip(models, inputs, strict=True):
        position = {i: k for k, i in enumerate(images_of.ids)}
        targets = images_of.subset([position[i] for i in disputed])
        folder = out / "runs" / slug(model.spec.name)
        say(f"Inverting {model.spec.name} on the {len(disputed)} disputed inputs")
        invert_images(
            folder,
            model,
            targets,
            layers=[layer],
            seeds=seeds,
            config=config,
            null_pool=choose(images_of, min(256, len(images_of)), config.seed + 1),
            progress=progress,
            extra={"images": {"split": split}, "command": "percalign trust"},
        )
        runs[model.spec.name] = folder
        if judges:
            table = judge_folder(folder, judges, seed=config.seed)
            frames.append(table.assign(input_id=table["target_id"], model=model.spec.name))
    score_frames = [judge_scores(pd.concat(frames), metric)] if frames else []
    if study is not None:
        score_frames.append(_human(Path(study), runs))
    scores = pd.concat(score_frames, ignore_index=True)
    write_table(scores, out / "scores.csv")
    per_input, summary = evaluate(predictions, scores, n_boot=n_boot, seed=config.seed)
    write_table(per_input, out / "per_input.csv")
    write_table(summary, out / "summary.csv")
    selected = None
    if select is not None:
        selected = _select(scores, select)
        say(f"Building a survey of the {len(selected)} least certain inputs")
        parts = [
            subset_run(folder, out / "selected" / folder.name, selected) for folder in runs.values()
        ]
        from percalign.survey.build import build_survey

        build_survey(out / "survey", parts, **(survey or {}))
    result = {
        "kind": "percalign.trust",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "models": [
            {"name": m.spec.name, "weights": m.spec.weights, "weights_sha256": m.weights_sha256}
            for m in models
        ],
        "images": {"source": images, "split": split, "inputs": len(inputs[0])},
        "disputed": len(disputed),
        "judges": [j.name for j in judges],
        "study": None if study is None else str(Path(study).resolve()),
        "metric": metric,
        "seeds": seeds,
        "layer": layer,
        "inversion": config.to_dict(),
        "selected": selected,
        "summary": json.loads(summary.to_json(orient="records")),
        "elapsed_seconds": round(time.perf_counter() - started, 2),
        "code": _provenance.code_version(),
    }
    (out / RESULT).write_text(json.dumps(result, indent=1) + "\n")
    return predictions, scores, per_input, summary, selected
