"""The people's half of the score step, which ``percalign score`` runs alone.

:func:`score_answers` takes a survey's answers (or any long answer table) and an
:class:`AnswerAnalysis`, and computes every table of the answers: exclusions, alignment with
crossed-bootstrap CIs, the per-model and paper-style tables, pairwise comparisons (Holm over
the file), agreement between participants and the noise ceiling, the judges against the people,
matching accuracy and confusions, and plans from the answers as a pilot.
:meth:`AnswerScores.write` writes them, and :meth:`AnswerScores.summary` the entries of
``summary.json`` they make, in the one layout of ``scores/`` (the score step adds the judges'
tables beside them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from percalign.errors import ConfigError
from percalign.execution.answers import KIND_LABELS, participant_kind, study_answers
from percalign.scoring import Exclusions

__all__ = [
    "AnswerAnalysis",
    "AnswerScores",
    "judges_vs_humans",
    "score_answers",
    "stand_in",
]


@dataclass(frozen=True)
class AnswerAnalysis:
    """How answers are scored.

    Attributes:
        by: alignment is reported per group of these columns.
        rules: the exclusion rules.
        n_boot, seed: bootstrap resamples, and their seed.
        compare: columns whose levels are compared pairwise (those with two or more levels).
        table: (rows, columns) of a paper-style table of alignment.
        judges: judge names that answer the survey's items too (needs ``stimuli``).
        stimuli: the survey folder (its ``stimuli/``).
        bots_judge: the judge the simulated participants decide with: its agreement with them
            is by construction, so it is marked and never recommended.
        matching: also score matching accuracy per IRI and the confusions (matching designs).
        before_exclusions: also report alignment before exclusions, when any applied.
        halfwidth: plan the participants for a 95% CI of +- this per group.
        plan_difference, power: with ``compare``, plan the participants that tell two levels
            apart by this difference at this power.
    """

    by: Sequence[str]
    rules: Exclusions = field(default_factory=Exclusions)
    n_boot: int = 2000
    seed: int = 0
    compare: Sequence[str] = ()
    table: tuple[str, str] | None = None
    judges: Sequence[str] = ()
    stimuli: Path | None = None
    bots_judge: str | None = None
    matching: bool = False
    before_exclusions: bool = False
    halfwidth: float | None = None
    plan_difference: float | None = None
    power: float = 0.8


@dataclass
class AnswerScores:
    """The tables of :func:`score_answers` (None: not asked for, or nothing to show)."""

    analysis: AnswerAnalysis
    answers: pd.DataFrame
    kept: pd.DataFrame
    exclusions: pd.DataFrame
    humans: pd.DataFrame
    kind: str
    unexcluded: pd.DataFrame | None = None
    by_model: pd.DataFrame | None = None
    table: pd.DataFrame | None = None
    comparisons: pd.DataFrame | None = None
    versus: pd.DataFrame | None = None
    matching: pd.DataFrame | None = None
    confusion: pd.DataFrame | None = None
    plans: dict[str, list[str]] = field(default_factory=dict)
    agreement: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The entries of ``summary.json`` about the answers."""
        a, kept = self.analysis, self.kept
        return {
            "by": list(a.by),
            "bootstrap": a.n_boot,
            "seed": a.seed,
            "exclusions": dataclasses.asdict(a.rules),
            "excluded": self.exclusions.to_dict(orient="records"),
            "participants_kind": self.kind,
            "answers": len(self.answers),
            "participants": int(self.answers["participant"].nunique()),
            "kept_answers": len(kept),
            "kept_participants": int(kept["participant"].nunique()),
            **_answers_per_item(kept),
            **self.agreement,
            "alignment": self.humans.to_dict(orient="records"),
            **({"plans": self.plans} if self.plans else {}),
        }

    def write(self, folder: Path, *, order: Any = None) -> None:
        """Write the tables into ``folder`` (``order``: how to order the paper-style table)."""
        self.answers.to_csv(folder / "answers.csv", index=False)
        self.exclusions.to_csv(folder / "exclusions.csv", index=False)
        self.humans.to_csv(folder / "humans.csv", index=False)
        frames = {
            "humans_by_model.csv": self.by_model,
            "comparisons.csv": self.comparisons,
            "judges_vs_humans.csv": self.versus,
            "matching.csv": self.matching,
        }
        for name, frame in frames.items():
            if frame is not None:
                frame.to_csv(folder / name, index=False)
        if self.table is not None:
            (self.table if order is None else order(self.table)).to_csv(folder / "humans_table.csv")
        if self.confusion is not None:
            self.confusion.to_csv(folder / "confusion.csv")


def score_answers(answers: pd.DataFrame, analysis: AnswerAnalysis) -> AnswerScores:
    """Every table of ``answers`` (a long answer table, one row per answer) that ``analysis``
    asks for; the answers are read through
    :func:`~percalign.execution.answers.study_answers`."""
    from percalign.scoring import alignment, apply_exclusions, paper_table

    a = analysis
    answers = study_answers(answers)
    kept, report = apply_exclusions(answers, a.rules)
    kind = participant_kind(answers) if "platform" in answers.columns else "people"
    humans = alignment(kept, list(a.by), n_boot=a.n_boot, seed=a.seed)
    humans.insert(0, "participants_kind", kind)
    scores = AnswerScores(a, answers, kept, report, humans, kind)
    if a.before_exclusions and int(report["participants"].sum()):
        scores.unexcluded = alignment(answers, list(a.by), n_boot=a.n_boot, seed=a.seed)
    if "model" in kept.columns:
        scores.by_model = alignment(kept, ["model"], n_boot=a.n_boot, seed=a.seed)
        scores.by_model.insert(0, "participants_kind", kind)
    if a.table is not None:
        rows, cols = a.table
        cells = alignment(kept, [rows, cols], n_boot=a.n_boot, seed=a.seed)
        scores.table = paper_table(cells, rows, cols)
    compared = _comparisons(kept, a.compare, a.n_boot, a.seed)
    if len(compared):
        compared.insert(0, "participants", KIND_LABELS[kind])
        scores.comparisons = compared
    if a.judges:
        scores.versus = _versus(kept, a, kind)
    if a.matching:
        scores.matching, scores.confusion = _matching(kept)
    scores.agreement = _agreement(kept, a.seed)
    scores.plans = _plans(kept, a)
    return scores


def stand_in(versus: pd.DataFrame) -> str | None:
    """The judge that can stand in for people on these stimuli: the one with the highest
    expected agreement of those that agree with the human majority on 80% of the items, and
    do not decide the simulated participants; None when there is none."""
    best = versus[versus["majority"] >= 0.8]
    if "note" in best.columns:
        best = best[best["note"] == ""]
    best = best.sort_values("expected", ascending=False)
    return str(best.iloc[0]["judge"]) if len(best) else None


def _agreement(kept: pd.DataFrame, seed: int) -> dict[str, Any]:
    from percalign.scoring import fleiss_kappa, krippendorff_alpha, noise_ceiling

    answers = kept.assign(choice=kept["correct"])
    try:
        fleiss: float | None = fleiss_kappa(answers)
    except ValueError:  # items answered by different numbers of people
        fleiss = None
    return {
        "krippendorff_alpha": krippendorff_alpha(answers),
        "fleiss_kappa": fleiss,
        "noise_ceiling": noise_ceiling(kept, seed=seed),
    }


def _versus(kept: pd.DataFrame, a: AnswerAnalysis, kind: str) -> pd.DataFrame:
    from percalign.judges import get_judges

    if a.stimuli is None:
        raise ConfigError("--judges needs a survey folder: the judges look at its stimuli.")
    versus = judges_vs_humans(a.stimuli, kept, get_judges(list(a.judges)), a.by, a.seed)
    versus.insert(0, "participants", KIND_LABELS[kind])
    if kind != "people":
        # the bots decide with this judge: its agreement with them is by construction
        versus["note"] = np.where(
            versus["judge"] == a.bots_judge,
            "decides the simulated participants: not evidence of agreement",
            "",
        )
    return versus


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


def _matching(kept: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Matching accuracy per IRI and, per model, the counts of which target each target's
    IRIs were matched to (rows model x target)."""
    from percalign.scoring import confusion_matrices, matching_accuracy

    trials = kept[~kept["is_catch"].astype(bool)] if "is_catch" in kept else kept
    if trials.empty:
        return None, None
    per_iri = matching_accuracy(trials, by=["model", "query"])
    matrices = confusion_matrices(trials)
    confusion = pd.concat(matrices, names=["model", "target"]).fillna(0).astype(int)
    return per_iri, confusion


# ------------------------------------------------------------------ plans from a pilot
def _plans(kept: pd.DataFrame, a: AnswerAnalysis) -> dict[str, list[str]]:
    plans = {}
    if a.halfwidth is not None:
        plans["halfwidth"] = _halfwidth_advice(kept, list(a.by), a.halfwidth)
    if a.plan_difference is not None:
        if len(a.compare) != 1:
            raise ConfigError(
                "--plan-difference needs --compare COLUMN: the levels whose difference to plan."
            )
        plans["difference"] = _difference_advice(kept, a.compare[0], a.plan_difference, a.power)
    return plans


def _layout(lay: Any) -> str:
    return f"{lay.iris} IRIs with {lay.participants} participants"


def _halfwidth_advice(table: pd.DataFrame, by: list[str], halfwidth: float) -> list[str]:
    """One line per group: the participants a 95% CI of +- ``halfwidth`` needs at the group's
    IRIs (its variance components from these answers), or the floor and the IRIs needed."""
    from percalign.scoring import (
        CrossedDesign,
        plan_halfwidth,
        predicted_halfwidth,
        variance_components,
    )

    lines = []
    groups = table.groupby(by, sort=True, observed=True) if by else [((), table)]
    for key, group in groups:
        label = ", ".join(map(str, key if isinstance(key, tuple) else (key,))) or "all"
        try:
            c = variance_components(CrossedDesign.of(group))[0]
        except ConfigError as exc:
            lines.append(f"{label}: no plan: {exc}")
            continue
        plan = plan_halfwidth(c, halfwidth)
        lay, each = c.layout, f"each answering {c.layout.per_participant:.0f}"
        target = f"target {c.target:.4f}, " if lay.iris_per_target > 1 else ""
        parts = (
            f"{label}: variance components (participant {c.participant:.4f}, {target}IRI "
            f"{c.iri:.4f}, residual {c.residual:.4f}); with {lay.participants} participants "
            f"the CI is +-{predicted_halfwidth(c, lay):.3f}. "
        )
        if plan.reachable:
            lines.append(
                parts + f"+-{halfwidth:g} needs {plan.layout.participants} participants at its "
                f"{lay.iris} IRIs, {each} (with unlimited participants: +-{plan.floor:.3f})."
            )
        else:
            examples = "; ".join(_layout(e) for e in plan.examples)
            lines.append(
                parts + f"+-{halfwidth:g} cannot be reached with {lay.iris} IRIs at any number "
                f"of participants: the IRIs' variance alone leaves +-{plan.floor:.3f}. It needs "
                f"at least {plan.iris_needed} IRIs (with very many participants), e.g. "
                f"{examples} ({each})."
            )
    return lines


def _difference_advice(
    table: pd.DataFrame, column: str, difference: float, power: float
) -> list[str]:
    """One line per pair of levels of ``column``: the participants (answering both) needed to
    detect ``difference`` with ``power`` at the first level's IRIs, or the IRIs needed."""
    from percalign.scoring import (
        CrossedDesign,
        check_table,
        plan_difference,
        shared_components,
        variance_components,
    )

    design = CrossedDesign.of(check_table(table, [column]), column)
    components = variance_components(design)
    lines = []
    for a in range(len(components)):
        for b in range(a + 1, len(components)):
            ca, cb = components[a], components[b]
            label = f"{ca.level} vs {cb.level}"
            try:
                shared = shared_components(design, a, b)
            except ConfigError as exc:
                lines.append(f"{label}: no plan: {exc}")
                continue
            plan = plan_difference(ca, cb, shared, difference, power)
            lay, each = ca.layout, f"each answering {ca.layout.per_participant:.0f} per level"
            if plan.reachable:
                lines.append(
                    f"{label}: a difference of {difference:g} at power {power:g} needs "
                    f"{plan.layout.participants} participants who answer both, at {lay.iris} "
                    f"IRIs per level, {each}."
                )
            else:
                examples = "; ".join(_layout(e) for e in plan.examples)
                lines.append(
                    f"{label}: a difference of {difference:g} cannot reach power {power:g} with "
                    f"{lay.iris} IRIs per level at any number of participants (at most "
                    f"{plan.floor:.2f}). It needs at least {plan.iris_needed} IRIs per level "
                    f"(with very many participants), e.g. {examples} ({each})."
                )
    return lines
