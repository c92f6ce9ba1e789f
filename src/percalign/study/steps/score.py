"""The scoring step of a study: judges' alignment, people's alignment, and how they relate.

Writes ``scores/`` (atomically): ``validity.csv``, ``judges.csv`` (alignment per run, judge,
layer and seed type), ``judges_by_model.csv``, ``judges_by_loss.csv``, ``judges_table.csv``
(the paper's table: mean and SD over judges), and when the survey has answers the tables of
:mod:`percalign.study.steps.score_answers` (``answers.csv``, ``exclusions.csv``,
``humans.csv``, ``humans_by_model.csv``, ``humans_table.csv``, ``comparisons.csv``,
``judges_vs_humans.csv``; ``matching.csv`` and ``confusion.csv`` for matching designs), the
same files ``percalign score`` writes; ``summary.json`` last. Simulated participants (platform
``bot``) are labelled as such in every table and figure.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from percalign.inversion.config import comparison_loss
from percalign.scoring import Exclusions
from percalign.study.graph import Inputs
from percalign.study.spec import StudySpec
from percalign.study.steps.common import run_folders
from percalign.study.steps.score_answers import AnswerAnalysis, score_answers
from percalign.study.steps.survey import answer_digest

__all__ = [
    "answer_analysis",
    "over_judges",
    "score",
    "score_extra",
    "score_study",
    "with_labels",
]


def with_labels(answers: pd.DataFrame, labels: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """``answers`` with each model's ``architecture`` and ``training`` (the paper-style
    tables' labels) as columns."""
    return answers.assign(
        architecture=answers["model"].map({m: labels[m][0] for m in labels}),
        training=answers["model"].map({m: labels[m][1] for m in labels}),
    )


def answer_analysis(spec: StudySpec, folder: Path) -> AnswerAnalysis:
    """The study's declared analysis of its survey's answers (``folder``: the study)."""
    by = list(spec.scoring.by)
    return AnswerAnalysis(
        by=by,
        rules=Exclusions(**dataclasses.asdict(spec.exclusions)),
        n_boot=spec.scoring.n_boot,
        seed=spec.study.seed,
        compare=["model", *by],
        table=(spec.scoring.table_rows, spec.scoring.table_columns),
        judges=list(spec.judges.names),
        stimuli=folder / "survey",
        bots_judge=spec.bots.judge,
        matching=spec.survey.design in ("matching", "clustering"),
    )


def over_judges(values: Sequence[float] | pd.Series, digits: int = 1) -> str:
    """``mean (SD std)`` of one number per judge (the paper's summary over judges); the
    spread is named as an SD so that it is never read as a CI.

    The std is the sample standard deviation (``ddof=1``): the judges are a few of the many
    one could have chosen, and the spread says how much the number depends on that choice;
    ``ddof=0`` would understate it (by a factor 0.71 for two judges). A single judge has no
    spread, so its value is shown alone with "1 judge" rather than "SD 0.0".

    >>> over_judges([60.0, 70.0])
    '65.0 (SD 7.1)'
    >>> over_judges([61.25])
    '61.2 (1 judge)'
    """
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if len(array) == 0:
        return "-"
    if len(array) == 1:
        return f"{array[0]:.{digits}f} (1 judge)"
    return f"{array.mean():.{digits}f} (SD {array.std(ddof=1):.{digits}f})"


def _validity(runs: Mapping[tuple[str, str], Path]) -> pd.DataFrame:
    """Validity per model x loss x layer x seed type, with the distances and diagnostics."""
    from percalign.store.runs import read_manifest

    rows = []
    for (model, loss), folder in runs.items():
        manifest = read_manifest(folder)
        for layer, v in manifest.get("validity", {}).items():
            records = pd.DataFrame([r for r in manifest["iris"] if r["layer"] == layer])
            for seed_type, part in records.groupby("seed_type", sort=False):
                first = part.get("first_valid_step", pd.Series(dtype=float)).dropna()
                bounds = part.reindex(columns=["at_zero", "at_one"], fill_value=0.0).sum(axis=1)
                rows.append(
                    {
                        "model": model,
                        "loss": loss,
                        "layer": layer,
                        "seed_type": seed_type,
                        "valid": int(part["valid"].sum()),
                        "iris": len(part),
                        "pass_rate": float(part["valid"].mean()),
                        "median_distance": float(part["distance"].median()),
                        "threshold": v.get("threshold"),
                        "median_first_valid_step": float(np.median(first)) if len(first) else None,
                        "at_0_or_1": float(bounds.mean()),
                    }
                )
    return pd.DataFrame(rows)


def _valid_judgments(folder: Path) -> pd.DataFrame:
    """A run's judgments of its valid IRIs (all of them when the run has no validity flags)."""
    from percalign.execution.run_folders import JUDGMENTS

    table = pd.read_csv(folder / JUDGMENTS)
    if table["valid"].isna().all():
        return table
    return table[table["valid"].astype(bool)]


def _judges(
    spec: StudySpec, runs: Mapping[tuple[str, str], Path], labels: Mapping[str, tuple[str, str]]
) -> pd.DataFrame:
    from percalign.judges.metric import summarize

    frames = []
    for (model, loss), folder in runs.items():
        summary = summarize(
            _valid_judgments(folder), n_boot=spec.scoring.n_boot, seed=spec.study.seed
        )
        arch, training = labels[model]
        frames.append(summary.assign(model=model, loss=loss, architecture=arch, training=training))
    return pd.concat(frames, ignore_index=True)


def _judges_by_model(spec: StudySpec, runs: Mapping[tuple[str, str], Path]) -> pd.DataFrame:
    """Alignment (%) per model, loss and judge over its valid IRIs, with a bootstrap CI that
    resamples targets, then IRIs within targets, and the paper's proxy (``seed_2afc``, %)."""
    from percalign.execution.run_folders import JUDGMENTS
    from percalign.scoring import target_ci

    metric = spec.judges.metric
    rows = []
    for (model, loss), folder in runs.items():
        every = pd.read_csv(folder / JUDGMENTS)
        table = _valid_judgments(folder)
        for judge, group in table.groupby("judge", sort=False):
            known = group[metric].notna()
            values = group.loc[known, metric].astype(float).to_numpy()
            targets = group.loc[known, "target_id"].to_numpy()
            lo, hi = target_ci(values, targets, spec.scoring.n_boot, spec.study.seed)
            rows.append(
                {
                    "model": model,
                    "loss": loss,
                    "judge": judge,
                    "iris": len(values),
                    "of": int((every["judge"] == judge).sum()),
                    "alignment": 100 * values.mean() if len(values) else float("nan"),
                    "lo": 100 * lo,
                    "hi": 100 * hi,
                    # the paper's own proxy beside it: the IRI closer to its target than to
                    # its seed, on the same valid IRIs
                    "seed_2afc": 100 * group["seed_2afc"].dropna().astype(float).mean(),
                }
            )
    return pd.DataFrame(rows)


def _judges_by_loss(by_model: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """Model x loss family: mean (SD) over the judges that judged it (valid IRIs), with
    how many of the run's IRIs were valid."""
    if by_model.empty:  # no valid IRI anywhere: an empty table, not a crash
        return pd.DataFrame(index=pd.Index([], name="model"))
    groups = by_model.groupby(["model", "loss"], sort=False)
    cells = groups["alignment"].agg(over_judges)
    judges = groups["judge"].agg(",".join)
    valid, shown = groups["iris"].max(), groups["of"].max()
    # the judges are named in brackets, so one judge's "(1 judge)" would say it twice; the
    # valid IRIs of all, since a cell of 1 valid IRI in 48 is not a cell of 48
    text = [
        f"{c.removesuffix(' (1 judge)')} ({j}; {n}/{of} valid)"
        for c, j, n, of in zip(cells, judges, valid, shown, strict=True)
    ]
    table = pd.Series(text, index=cells.index).unstack("loss")
    order = [m.name for m in spec.models]
    return table.reindex(
        index=[m for m in order if m in table.index],
        columns=[c for c in spec.inversion.losses if c in table.columns],
    )


def _judges_table(
    judged: pd.DataFrame,
    by_model: pd.DataFrame,
    labels: Mapping[str, tuple[str, str]],
    spec: StudySpec,
) -> pd.DataFrame:
    """Rows x columns of the paper's table: mean (SD) over judges of the chosen metric, on
    the IRIs of :func:`~percalign.inversion.config.comparison_loss`.

    Each judge's number for a model is the one of ``judges_by_model.csv`` (over the model's
    valid IRIs), so a result has one value wherever the report shows it; axes that are not
    model labels (layer, seed type) come from the per-group ``judged`` summary instead.
    """
    metric = spec.judges.metric
    rows, cols = spec.scoring.table_rows, spec.scoring.table_columns
    if judged.empty or by_model.empty:  # no valid IRI anywhere: an empty table, not a crash
        return pd.DataFrame(index=pd.Index([], name=rows))
    per_model = by_model.assign(
        architecture=by_model["model"].map(lambda m: labels[m][0]),
        training=by_model["model"].map(lambda m: labels[m][1]),
    ).rename(columns={"alignment": metric})
    source = per_model if {rows, cols} <= set(per_model.columns) else judged
    source = source[source["loss"] == comparison_loss(spec.inversion.losses)]
    per_judge = source.groupby([rows, cols, "judge"], sort=False)[metric].mean().reset_index()
    cells = per_judge.groupby([rows, cols], sort=False)[metric].agg(over_judges)
    return cells.unstack(cols)


def _in_order(
    table: pd.DataFrame, labels: Mapping[str, tuple[str, str]], spec: StudySpec
) -> pd.DataFrame:
    """Rows and columns of a paper-style table in the order the spec lists the models."""
    position = {"architecture": 0, "training": 1}
    seen: dict[str, list[str]] = {"rows": [], "columns": []}
    for m in spec.models:
        for axis, name in (
            ("rows", spec.scoring.table_rows),
            ("columns", spec.scoring.table_columns),
        ):
            value = labels[m.name][position[name]] if name in position else None
            if value is not None and value not in seen[axis]:
                seen[axis].append(value)
    rows = [r for r in seen["rows"] if r in table.index] or list(table.index)
    cols = [c for c in seen["columns"] if c in table.columns] or list(table.columns)
    return table.reindex(index=rows, columns=cols)


def score_study(
    spec: StudySpec,
    folder: Path,
    runs: Mapping[tuple[str, str], Path],
    labels: Mapping[str, tuple[str, str]],
) -> dict[str, Any]:
    """Score the study in ``folder``; writes ``folder/scores`` and returns its summary.

    The judges' tables come from the run folders; the answers' tables are those of
    :func:`~percalign.study.steps.score_answers.score_answers` under the study's declared
    analysis (what ``percalign score`` computes too), with each model's architecture and
    training as columns.
    """
    from percalign.store.runs import atomic_folder

    judged = _judges(spec, runs, labels)
    summary: dict[str, Any] = {
        "judge_metric": spec.judges.metric,
        "judges": spec.judges.names,
        "by": spec.scoring.by,
        "exclusions": dataclasses.asdict(spec.exclusions),
    }
    answers = _answers(folder / "survey")
    with atomic_folder(folder / "scores", overwrite=True) as tmp:
        _validity(runs).to_csv(tmp / "validity.csv", index=False)
        judged.to_csv(tmp / "judges.csv", index=False)
        by_model = _judges_by_model(spec, runs)
        by_model.to_csv(tmp / "judges_by_model.csv", index=False)
        _judges_by_loss(by_model, spec).to_csv(tmp / "judges_by_loss.csv")
        table = _judges_table(judged, by_model, labels, spec)
        _in_order(table, labels, spec).to_csv(tmp / "judges_table.csv")
        if answers is not None and len(answers):
            scores = score_answers(with_labels(answers, labels), answer_analysis(spec, folder))
            scores.write(tmp, order=lambda t: _in_order(t, labels, spec))
            summary.update(scores.summary(), declared_by="study.toml", overrides={})
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return summary


def _answers(survey: Path) -> pd.DataFrame | None:
    """The survey's answers, or None when there is no survey or no answer yet."""
    from percalign.store.study import read_answers

    if not (survey / "plan.json").is_file():
        return None
    answers = read_answers(survey)
    return None if answers.empty else answers


# ------------------------------------------------------------------ the score step
def score_extra(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    # the answers so far, and the models' labels in the tables (from the zoo, else the spec)
    return (answer_digest(inputs.folder / "survey"), inputs.value("models").labels)


def score(inputs: Inputs, todo: list[str]) -> None:
    spec = inputs.spec
    runs = {(m, loss): f for m, loss, f in run_folders(spec, inputs.folder).values()}
    labels = inputs.value("models").labels
    inputs.run_each(todo, lambda _p: score_study(spec, inputs.folder, runs, labels))
