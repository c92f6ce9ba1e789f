"""The scoring step of a study: judges' alignment, people's alignment, and how they relate.

Writes ``scores/`` (atomically): ``validity.csv``, ``judges.csv`` (alignment per run, judge,
layer and seed type), ``judges_table.csv`` (the paper's table: mean and SD over judges), and
when the survey has answers ``answers.csv``, ``exclusions.csv``, ``humans.csv``,
``humans_table.csv``, ``comparisons.csv``, ``judges_vs_humans.csv``; ``summary.json`` last.
Simulated participants (platform ``bot``) are labelled as such in every table and figure.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from percalign.study.graph import Inputs
from percalign.study.spec import StudySpec
from percalign.study.steps.common import run_folders
from percalign.study.steps.survey import answer_digest

__all__ = [
    "declared_exclusions",
    "declared_spec",
    "human_scores",
    "judges_vs_humans",
    "over_judges",
    "participant_kind",
    "score",
    "score_extra",
    "score_study",
    "study_answers",
]


#: how each participant kind is named in tables
KIND_LABELS = {
    "simulated": "simulated participants (bots)",
    "people": "people",
    "mixed": "people and simulated participants mixed",
}


def participant_kind(answers: pd.DataFrame) -> str:
    """``simulated`` (all bots), ``people`` (no bots) or ``mixed``."""
    bots = answers["platform"].astype(str).eq("bot")
    return "simulated" if bots.all() else ("people" if not bots.any() else "mixed")


def study_answers(answers: pd.DataFrame) -> pd.DataFrame:
    """A survey's answers keyed and ordered for scoring: each participant is
    ``platform:platform_pid`` (not the random id of their session), rows by participant and
    trial, so that the same answers always give the same bootstrap (resampling follows order),
    and with a ``target`` column (the first of an item's candidates, the IRI's own target).

    Tables without the platform columns (an answer table from elsewhere) are returned as they
    are. ``percalign score STUDY`` and the study's score step both read answers through here.
    """
    if not {"platform", "platform_pid", "trial"} <= set(answers.columns):
        return answers
    keyed = answers.assign(
        participant=answers["platform"].astype(str) + ":" + answers["platform_pid"].astype(str)
    )
    if "candidates" in keyed.columns and "target" not in keyed.columns:
        # the first candidate is the IRI's own target (display order is separate): the
        # crossed bootstrap resamples targets, shared by the models that inverted them
        keyed["target"] = keyed["candidates"].astype(str).str.split("|").str[0]
    return keyed.sort_values(["participant", "trial"], kind="stable")


def declared_spec(folder: Path) -> StudySpec | None:
    """The spec a study was run with (``study.toml``), given the study's folder or its
    ``survey`` folder; None for a survey built on its own."""
    from percalign.study.spec import load_spec

    folder = Path(folder)
    for root in (folder, folder.parent):
        if (root / "study.toml").is_file() and (root / "survey").resolve() in (
            folder.resolve(),
            (folder / "survey").resolve(),
        ):
            return load_spec(root / "study.toml")
    return None


def declared_exclusions(survey: Path) -> Any:
    """The exclusion rules declared for a survey's answers: its study's ``[exclusions]``, else
    the attention rules the survey was built with (catch accuracy, side rule) over the
    defaults, else the defaults."""
    from percalign.scoring import Exclusions
    from percalign.store.study import read_meta, study_url

    spec = declared_spec(survey)
    if spec is not None:
        return Exclusions(**dataclasses.asdict(spec.exclusions))
    meta = read_meta(study_url(survey))
    declared = {"min_catch_accuracy": meta.get("min_catch_accuracy"), **meta.get("attention", {})}
    return Exclusions(**{k: v for k, v in declared.items() if v is not None})


def human_scores(
    answers: pd.DataFrame, rules: Any, by: Sequence[str], n_boot: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(answers kept, the exclusion report, alignment by ``by``) of an answer table.

    The one computation behind ``percalign score`` and the study's score step: exclusions
    ``rules`` (:class:`~percalign.scoring.Exclusions`), then alignment with crossed-bootstrap
    CIs (``n_boot`` resamples seeded by ``seed``).
    """
    from percalign.scoring import alignment, apply_exclusions

    kept, report = apply_exclusions(study_answers(answers), rules)
    return kept, report, alignment(kept, list(by), n_boot=n_boot, seed=seed)


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


def judges_vs_humans(
    study: Path, table: pd.DataFrame, judges: Sequence[Any], by: Sequence[str], seed: int = 0
) -> pd.DataFrame:
    """Each judge answers the survey's items; its answers are compared with the people's.

    Args:
        study: the survey folder (its ``stimuli/``).
        table: the answer table after exclusions (``item``, ``query``, ``candidates``,
            ``correct``, ``is_catch`` and the ``by`` columns).
        judges: :class:`~percalign.judges.Judge` objects.
        by: conditions whose ranking by judges and by people is compared (Kendall's tau).
    """
    import torch

    from percalign.scoring import judge_agreement, ranking_agreement
    from percalign.store.images import read_png

    regular = table[~table["is_catch"].astype(bool)]
    items = regular.drop_duplicates("item")[["item", "query", "candidates", *by]]
    cache: dict[str, torch.Tensor] = {}

    def image(sha: str) -> torch.Tensor:
        if sha not in cache:
            cache[sha] = read_png(Path(study) / "stimuli" / f"{sha}.png")
        return cache[sha]

    queries = [image(q) for q in items["query"]]
    refs = [torch.stack([image(c) for c in cands.split("|")]) for cands in items["candidates"]]
    # items of one run share an image format; a study of several formats is judged per format
    formats: dict[tuple[int, ...], list[int]] = {}
    for i, (q, r) in enumerate(zip(queries, refs, strict=True)):
        formats.setdefault((*q.shape, *r.shape), []).append(i)
    human_by_group = regular.groupby(list(by))["correct"].mean() if by else None
    rows = []
    for judge in judges:
        chosen = np.zeros(len(items), dtype=int)
        for group in formats.values():
            for start in range(0, len(group), 64):
                part = group[start : start + 64]
                picked = judge.match(
                    torch.stack([queries[i] for i in part]), torch.stack([refs[i] for i in part])
                )
                chosen[part] = picked.numpy()
        decisions = items.assign(correct=(chosen == 0).astype(int))
        agree = judge_agreement(regular, decisions[["item", "correct"]])
        row = {"judge": judge.name, **agree, "judge_alignment": float(decisions["correct"].mean())}
        if human_by_group is not None and len(human_by_group) >= 3:
            rank = ranking_agreement(
                human_by_group, decisions.groupby(list(by))["correct"].mean(), seed=seed
            )
            row.update(tau=rank["tau"], tau_low=rank["ci_low"], tau_high=rank["ci_high"])
        rows.append(row)
    return pd.DataFrame(rows)


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


def comparison_loss(spec: StudySpec) -> str:
    """The loss family whose IRIs compare the models: regularizer-free when the study has it.

    The paper compares models with regularizer-free IRIs, because the other families decide
    the conclusion themselves (human-leaning priors make every model look aligned, the
    adversarial loss every model unaligned).
    """
    losses = spec.inversion.losses
    return "regularizer-free" if "regularizer-free" in losses else losses[0]


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
    the IRIs of :func:`comparison_loss`.

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
    source = source[source["loss"] == comparison_loss(spec)]
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
    """Score the study in ``folder``; writes ``folder/scores`` and returns its summary."""
    from percalign.scoring import (
        Exclusions,
        alignment,
        krippendorff_alpha,
        noise_ceiling,
        paper_table,
    )
    from percalign.store.runs import atomic_folder

    judged = _judges(spec, runs, labels)
    summary: dict[str, Any] = {
        "judge_metric": spec.judges.metric,
        "judges": spec.judges.names,
        "by": spec.scoring.by,
        "exclusions": dataclasses.asdict(spec.exclusions),
    }
    answers = _answers(folder / "survey")
    if answers is not None:
        answers = study_answers(answers)
    with atomic_folder(folder / "scores", overwrite=True) as tmp:
        _validity(runs).to_csv(tmp / "validity.csv", index=False)
        judged.to_csv(tmp / "judges.csv", index=False)
        by_model = _judges_by_model(spec, runs)
        by_model.to_csv(tmp / "judges_by_model.csv", index=False)
        _judges_by_loss(by_model, spec).to_csv(tmp / "judges_by_loss.csv")
        table = _judges_table(judged, by_model, labels, spec)
        _in_order(table, labels, spec).to_csv(tmp / "judges_table.csv")
        if answers is not None and len(answers):
            kind = participant_kind(answers)
            arch = {m: labels[m][0] for m in labels}
            training = {m: labels[m][1] for m in labels}
            answers = answers.assign(
                architecture=answers["model"].map(arch), training=answers["model"].map(training)
            )
            answers.to_csv(tmp / "answers.csv", index=False)
            rules = Exclusions(**dataclasses.asdict(spec.exclusions))
            by = list(spec.scoring.by)
            kept, report, humans = human_scores(
                answers, rules, by, spec.scoring.n_boot, spec.study.seed
            )
            report.to_csv(tmp / "exclusions.csv", index=False)
            humans.insert(0, "participants_kind", kind)
            humans.to_csv(tmp / "humans.csv", index=False)
            per_model = alignment(kept, ["model"], n_boot=spec.scoring.n_boot, seed=spec.study.seed)
            per_model.insert(0, "participants_kind", kind)
            per_model.to_csv(tmp / "humans_by_model.csv", index=False)
            rows, cols = spec.scoring.table_rows, spec.scoring.table_columns
            cells = alignment(kept, [rows, cols], n_boot=spec.scoring.n_boot, seed=spec.study.seed)
            _in_order(paper_table(cells, rows, cols), labels, spec).to_csv(tmp / "humans_table.csv")
            if spec.survey.design in ("matching", "clustering"):
                _matching(kept, tmp)
            compared = _comparisons(kept, ["model", *by], spec.scoring.n_boot, spec.study.seed)
            if len(compared):
                compared.insert(0, "participants", KIND_LABELS[kind])
                compared.to_csv(tmp / "comparisons.csv", index=False)
            from percalign.judges import get_judges

            versus = judges_vs_humans(
                folder / "survey", kept, get_judges(spec.judges.names), by, spec.study.seed
            )
            versus.insert(0, "participants", KIND_LABELS[kind])
            if kind != "people":
                # the bots decide with this judge: its agreement with them is by construction
                versus["note"] = np.where(
                    versus["judge"] == spec.bots.judge,
                    "decides the simulated participants: not evidence of agreement",
                    "",
                )
            versus.to_csv(tmp / "judges_vs_humans.csv", index=False)
            summary.update(
                participants_kind=kind,
                answers=len(answers),
                participants=int(answers["participant"].nunique()),
                kept_answers=len(kept),
                kept_participants=int(kept["participant"].nunique()),
                **_answers_per_item(kept),
                excluded=report.to_dict(orient="records"),
                krippendorff_alpha=krippendorff_alpha(kept.assign(choice=kept["correct"])),
                noise_ceiling=noise_ceiling(kept, seed=spec.study.seed),
            )
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return summary


def _comparisons(
    kept: pd.DataFrame, columns: Sequence[str], n_boot: int, seed: int
) -> pd.DataFrame:
    """Pairwise comparisons of the levels of each of ``columns`` that has two or more, one
    table; ``p_holm`` corrects over every row of it (the family the report prints)."""
    from percalign.scoring import compare, holm

    frames = [
        compare(kept, column, n_boot=n_boot, seed=seed).assign(column=column)
        for column in dict.fromkeys(columns)
        if column in kept.columns and kept[column].nunique() >= 2
    ]
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    table["p_holm"] = holm(table["p"].to_numpy())
    return table[["column", *[c for c in table.columns if c != "column"]]]


def _answers_per_item(kept: pd.DataFrame) -> dict[str, float]:
    """Minimum and median answers per (non-catch) item after exclusions: what the methods
    text states, computed from what happened rather than from the plan."""
    trials = kept[~kept["is_catch"].astype(bool)] if "is_catch" in kept else kept
    per_item = trials.groupby("item").size()
    if per_item.empty:
        return {}
    return {
        "answers_per_item_min": int(per_item.min()),
        "answers_per_item_median": float(per_item.median()),
    }


def _matching(kept: pd.DataFrame, tmp: Path) -> None:
    """Matching accuracy per IRI (``matching.csv``) and per model the counts of which target
    each target's IRIs were matched to (``confusion.csv``, rows model x target)."""
    from percalign.scoring import confusion_matrices, matching_accuracy

    trials = kept[~kept["is_catch"].astype(bool)] if "is_catch" in kept else kept
    if trials.empty:
        return
    matching_accuracy(trials, by=["model", "query"]).to_csv(tmp / "matching.csv", index=False)
    matrices = confusion_matrices(trials)
    pd.concat(matrices, names=["model", "target"]).fillna(0).astype(int).to_csv(
        tmp / "confusion.csv"
    )


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
