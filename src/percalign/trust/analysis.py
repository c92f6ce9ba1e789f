"""The trust analysis end to end: predictions, IRIs of the disputed inputs, judges, the rules.

Output folder (``--out``)::

    predictions.csv   every input x model: label, prediction, max-softmax confidence
    models.csv        each model's accuracy on the split (95% Wilson CI) and on the used inputs
    runs/MODEL/       inversion run of the used disputed inputs (same targets and seeds per
                      model), with judgments.csv
    validity.csv      per model and seed type: IRIs, valid, dropped (only valid IRIs are scored)
    scores.csv        alignment per input x model x source (judge:NAME; humans; bots)
    per_input.csv     per used input: predictions, alignments, each rule's pick, truth
    summary.csv       accuracy with 95% CI of every rule per source and of each baseline, and
                      the paired difference of each rule to each baseline
    confidence.csv    per source: does alignment add to confidence (AUC and pick accuracy)
    selected/, survey/  with ``select``: the least certain inputs and their survey
    trust.json        settings, models (weights hashes), counts and the verdict; written last
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from percalign import _provenance
from percalign.data.images import ImageSet, choose, load_images, to_channels
from percalign.errors import ConfigError, MissingFileError
from percalign.execution.run_folders import invert_images, judge_folder
from percalign.inversion import InversionConfig, Progress
from percalign.judges.base import Judge
from percalign.models.model import Model
from percalign.scoring.stats import wilson
from percalign.store.runs import atomic_folder, read_manifest, slug, subset_run, write_table
from percalign.survey.settings import SurveyDesign
from percalign.trust.rule import disagreements, evaluate, inputs_needed, verdict
from percalign.trust.rule import select_uncertain as _select
from percalign.trust.settings import TrustSettings
from percalign.trust.sources import human_scores, judge_scores, valid_judgments

__all__ = [
    "TrustResult",
    "analyze",
    "predict",
    "prediction_table",
]

RESULT = "trust.json"


@dataclass(frozen=True)
class TrustResult:
    """What :func:`analyze` wrote (the tables are also in the folder)."""

    folder: Path
    predictions: pd.DataFrame
    scores: pd.DataFrame
    per_input: pd.DataFrame
    summary: pd.DataFrame
    confidence: pd.DataFrame
    verdict: str
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


def sample_inputs(disputed: Sequence[str], n: int | None, seed: int) -> list[str]:
    """``n`` of the ``disputed`` inputs drawn with ``seed``, in their order (all if n is None).

    >>> sample_inputs(["a", "b", "c"], None, 0)
    ['a', 'b', 'c']
    >>> len(sample_inputs(["a", "b", "c"], 2, 0))
    2
    """
    if n is None or n >= len(disputed):
        return list(disputed)
    index = np.sort(np.random.default_rng(seed).choice(len(disputed), size=n, replace=False))
    return [disputed[i] for i in index]


def _model_table(
    models: Sequence[Model], predictions: pd.DataFrame, used: Sequence[str]
) -> pd.DataFrame:
    """Accuracy per model on every input of the split (Wilson CI) and on the used inputs."""
    right = predictions.assign(right=predictions["predicted"] == predictions["label"])
    on_used = right[right["input_id"].isin(set(used))]
    rows = []
    for model in models:
        name = model.spec.name
        mine = right[right["model"] == name]["right"]
        lo, hi = wilson(int(mine.sum()), len(mine))
        rows.append(
            {
                "model": name,
                "inputs": len(mine),
                "accuracy": float(mine.mean()),
                "lo": lo,
                "hi": hi,
                "accuracy_on_used": float(on_used[on_used["model"] == name]["right"].mean()),
                "recorded_clean_accuracy": model.spec.extra.get("clean_accuracy"),
            }
        )
    return pd.DataFrame(rows)


def _human(study: Path, runs: dict[str, Path]) -> pd.DataFrame:
    from percalign.execution.answers import declared_exclusions, study_answers
    from percalign.scoring.exclusions import apply_exclusions
    from percalign.store.study import read_answers

    answers = read_answers(study)
    if answers.empty:
        raise MissingFileError(f"The study {str(study)!r} has no answers yet.")
    kept, _ = apply_exclusions(study_answers(answers), declared_exclusions(study))
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


def _overall(
    progress: Callable[[Progress], None] | None, k: int, n: int
) -> Callable[[Progress], None] | None:
    """The engine's progress of model ``k`` of ``n`` as progress over all ``n`` models.

    Every model inverts the same number of IRIs in the same batches, so each call's totals
    are the same and the whole is ``n`` times one call.
    """
    if progress is None:
        return None
    report = progress

    def update(p: Progress) -> None:
        report(
            Progress(
                steps_done=k * p.steps_total + p.steps_done,
                steps_total=n * p.steps_total,
                batch=k * p.batches + p.batch,
                batches=n * p.batches,
                mean_distance=p.mean_distance,
            )
        )

    return update


def analyze(
    out: Path,
    models: Sequence[Model],
    settings: TrustSettings | None = None,
    *,
    judges: Sequence[Judge] = (),
    config: InversionConfig | None = None,
    study: Path | None = None,
    select: int | None = None,
    survey: SurveyDesign | None = None,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrustResult:
    """Which model to trust when models disagree, measured on labelled images.

    Args:
        out: output folder (see the module docstring).
        models: two or more models; each sees the inputs at its own size and channels.
        settings: the inputs, the IRIs of the disputed ones and the rules' statistics
            (:class:`~percalign.trust.TrustSettings`; its defaults when None). Every model
            inverts the same inputs from the same seeds (seeds depend on the target and the
            seed only), all of a model's IRIs in one call; only IRIs that pass the validity
            gate are scored.
        judges: automated judges of the IRIs.
        config: the inversions' settings whole, instead of ``settings.config()`` (the
            options of ``percalign trust``); its seed must be ``settings.seed``.
        study: a survey folder whose answers (after its study's declared exclusions) add the
            source ``humans`` (from people) and ``bots`` (from simulated participants).
        select: build a survey of this many least certain used inputs into ``out/survey``.
        survey: the design of that survey (:class:`~percalign.survey.SurveyDesign`).
        overwrite: replace an existing ``out``.
        progress, log: the engine's progress callback (one bar over every model's
            inversions); one-line stage messages.
    """
    say = log or (lambda _msg: None)
    settings = settings or TrustSettings()
    config = config or settings.config()
    if config.seed != settings.seed:
        raise ConfigError(
            f"The inversion config's seed ({config.seed}) differs from the trust settings' "
            f"({settings.seed}); make the config with settings.config()."
        )
    if len(models) < 2:
        raise ConfigError(f"Trust needs two or more models; got {len(models)}.")
    names = [m.spec.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"Each model may appear once; got {names}.")
    if not judges and study is None:
        raise ConfigError("Give at least one judge (--judges) or a study with answers (--study).")
    if select is not None and not judges:
        raise ConfigError("--select ranks inputs by the judges' uncertainty; give --judges.")
    run = _Run(settings, config, list(judges), study, select, survey or SurveyDesign())
    out = Path(out)
    with atomic_folder(out, overwrite) as tmp:
        predictions, scores, per_input, summary, confidence, sentence, selected = _analyze_into(
            tmp, models, run, progress, say
        )
    return TrustResult(
        out,
        predictions,
        scores,
        per_input,
        summary,
        confidence,
        sentence,
        selected,
        None if selected is None else out / "survey",
    )


@dataclass(frozen=True)
class _Run:
    """What one analysis does: its settings, and what the call adds to them."""

    settings: TrustSettings
    config: InversionConfig
    judges: list[Judge]
    study: Path | None
    select: int | None
    survey: SurveyDesign


def _invert_all(
    out: Path,
    models: Sequence[Model],
    inputs: Sequence[ImageSet],
    used: list[str],
    run: _Run,
    progress: Callable[[Progress], None] | None,
    say: Callable[[str], None],
) -> tuple[dict[str, Path], pd.DataFrame | None]:
    """One inversion call per model over all used inputs, then each judge once per IRI."""
    st, c = run.settings, run.config
    runs: dict[str, Path] = {}
    frames = []
    say(
        f"Inverting {len(used)} inputs x seeds {st.seeds} for each of {len(models)} models: "
        f"{c.steps} steps, {c.resolved_parameterization} pixels, {c.optimizer} "
        f"{c.resolved_lr:g}, {c.schedule} (preset {c.preset or 'default, steps changed'})"
    )
    for k, (model, images_of) in enumerate(zip(models, inputs, strict=True)):
        position = {i: j for j, i in enumerate(images_of.ids)}
        targets = images_of.subset([position[i] for i in used])
        folder = out / "runs" / slug(model.spec.name)
        invert_images(
            folder,
            model,
            targets,
            layers=[st.layer],
            seeds=st.seeds,
            config=run.config,
            null_pool=choose(images_of, min(256, len(images_of)), st.seed + 1),
            progress=_overall(progress, k, len(models)),
            extra={"images": {"split": st.split}, "command": "percalign trust"},
        )
        runs[model.spec.name] = folder
        if run.judges:
            table = judge_folder(folder, run.judges, seed=st.seed)
            frames.append(table.assign(input_id=table["target_id"], model=model.spec.name))
    return runs, (pd.concat(frames, ignore_index=True) if frames else None)


def _analyze_into(
    out: Path,
    models: Sequence[Model],
    run: _Run,
    progress: Callable[[Progress], None] | None,
    say: Callable[[str], None],
) -> tuple[
    pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, str, list[str] | None
]:
    started = time.perf_counter()
    st = run.settings
    names = [m.spec.name for m in models]
    inputs = [_inputs(m, st.images, st.split, st.n_images, st.seed) for m in models]
    predictions = prediction_table(models, inputs)
    write_table(predictions, out / "predictions.csv")
    disputed = disagreements(predictions)
    if not disputed:
        raise ConfigError(
            "The models agree on every input, so there is nothing to decide; use more inputs "
            "(--n-images) or models that differ more."
        )
    used = sample_inputs(disputed, st.max_inputs, st.seed)
    say(
        f"{len(disputed)} of {len(inputs[0])} inputs get different labels from "
        f"{', '.join(names)}; using {len(used)}"
        + ("" if len(used) == len(disputed) else f" (a sample drawn with seed {st.seed})")
    )
    model_table = _model_table(models, predictions, used)
    write_table(model_table, out / "models.csv")
    runs, judged = _invert_all(out, models, inputs, used, run, progress, say)
    score_frames = []
    validity = pd.DataFrame(columns=["model", "seed_type", "iris", "valid", "dropped"])
    if judged is not None:
        kept, validity = valid_judgments(judged)
        score_frames.append(judge_scores(kept, st.metric))
    write_table(validity, out / "validity.csv")
    if run.study is not None:
        score_frames.append(_human(Path(run.study), runs))
    scores = pd.concat(score_frames, ignore_index=True)
    write_table(scores, out / "scores.csv")
    per_input, summary, confidence = evaluate(
        predictions, scores, inputs=used, folds=st.folds, n_boot=st.n_boot, seed=st.seed
    )
    write_table(per_input, out / "per_input.csv")
    write_table(summary, out / "summary.csv")
    write_table(confidence, out / "confidence.csv")
    sentence = verdict(summary, confidence)
    say(sentence)
    selected = None
    if run.select is not None:
        selected = _select(scores, run.select)
        say(f"Building a survey of the {len(selected)} least certain inputs")
        parts = [
            subset_run(folder, out / "selected" / folder.name, selected) for folder in runs.values()
        ]
        from percalign.survey.build import build_survey

        build_survey(out / "survey", parts, settings=run.survey, seed=st.seed)
    rules = summary[summary["source"].fillna("").astype(str) != ""]
    best = float(rules["accuracy"].max()) if len(rules) else float("nan")
    result = {
        "kind": "percalign.trust",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "models": [
            {
                "name": m.spec.name,
                "weights": m.spec.weights,
                "weights_sha256": m.weights_sha256,
                "accuracy": row["accuracy"],
            }
            for m, row in zip(models, model_table.to_dict("records"), strict=True)
        ],
        "images": {"source": st.images, "split": st.split, "inputs": len(inputs[0])},
        "disputed": len(disputed),
        "used": len(used),
        "max_inputs": st.max_inputs,
        "sources": list(dict.fromkeys(scores["source"])),
        "iris": int(validity["iris"].sum()),
        "dropped_invalid": int(validity["dropped"].sum()),
        "inputs_for_10_point_ci": inputs_needed(best),
        "judges": [j.name for j in run.judges],
        "study": None if run.study is None else str(Path(run.study).resolve()),
        "metric": st.metric,
        "seeds": st.seeds,
        "layer": st.layer,
        "folds": st.folds,
        "inversion": run.config.to_dict(),
        "selected": selected,
        "verdict": sentence,
        "summary": json.loads(summary.to_json(orient="records")),
        "confidence": json.loads(confidence.to_json(orient="records")),
        "elapsed_seconds": round(time.perf_counter() - started, 2),
        "code": _provenance.code_version(),
    }
    (out / RESULT).write_text(json.dumps(result, indent=1) + "\n")
    return predictions, scores, per_input, summary, confidence, sentence, selected
