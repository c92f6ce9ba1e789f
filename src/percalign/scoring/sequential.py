"""Declared questions and sequential decisions that keep their error rates at every look.

A study declares what it must decide (:class:`Question`): whether two levels of a column
(e.g. two models) differ, at rate ``alpha`` with ``power`` for a smallest difference of
interest; or each level's alignment to within a half-width. It declares a maximum budget of
participants and when to look (:class:`SequentialPlan`). At each look :func:`decide` settles
each question or lets it continue.

Why group-sequential boundaries with error spending, not anytime-valid confidence sequences:

- The looks are declared (every K participants), so a method that pays for looking
  continuously gives away power for nothing. Confidence sequences stay valid under any
  stopping, but at the sample sizes of a survey (tens of participants) they are much wider
  than a spending boundary at the same rate.
- The information here is capped: IRIs are fixed before the survey starts, so the variance
  of a comparison falls towards a floor set by the IRIs (:mod:`percalign.scoring.moments`),
  not towards 0. Spending by information fraction (information now / information at the
  budget) handles that directly, and the same variance parts say when a question *cannot*
  be decided with these IRIs. Confidence sequences assume information that grows without
  bound.
- Lan-DeMets spending (O'Brien-Fleming type by default) needs no fixed number of looks and
  gives the conventional, well-studied boundaries; beta spending adds a non-binding futility
  boundary, so stopping for futility (or ignoring it) never raises the false-positive rate.

The statistic at each look is the contrast over its closed-form crossed variance
(participants and targets, :func:`~percalign.scoring.moments.contrast_moments`), turned into
a z through Student's t on its Satterthwaite degrees of freedom; successive looks share the
IRIs and add participants, so the z-statistics have the canonical joint distribution with
information 1 / variance. Information fractions use the variance projected to the budget
from the present variance parts, and the information of the earlier looks is recomputed from
the same parts at each look (their participant counts are recorded). Recording each look's
own estimate instead does not work here: estimated from 5-10 participants, the information
falls from one look to the next in most simulated studies (88% of them with looks every 5),
and the boundary recursion needs it to grow.

Three choices aim at the declared power (``benchmarks/sequential.py`` measures how close they
come: about 2.5 points short at the smallest difference of interest, lost to the information
being estimated at the looks, where the fixed design planned the same way reaches it):

- **A budget with the maximum information the power needs.** Looking costs power (early
  boundaries are wider than the fixed test's, and futility stops lose some studies that a
  fixed design would win), so a budget that gives the fixed design's information falls short:
  with 13 looks the power is 0.75 where 0.80 was declared. The budget must reach the
  information of the fixed design times an inflation factor that follows from alpha, the
  power, the spending function and where the looks fall (1.2 for 10-13 evenly spread looks
  with O'Brien-Fleming spending). :func:`~percalign.scoring.budget.required_budget` finds the
  smallest budget whose own boundaries give the declared power, from a pilot's variance
  parts, by the same recursion the looks use (:func:`~percalign.scoring.boundaries.schedule`).
- **No futility stop before half the information** (:data:`FUTILITY_FROM`). The futility
  boundary is the |z| a study at the smallest difference of interest would exceed, so it
  depends on the information itself, not only on its fraction; early variance parts rest on
  a few participants, and an overestimated information stops studies that would have won.
  The first futility look at or after half the information spends all the beta due by then
  (Lan-DeMets spending allows skipping looks), so the design's error rates are unchanged and
  planning accounts for it.
- The efficacy boundaries never see futility (non-binding), so the false-positive rate holds
  whether or not a study stops for futility.

Outcomes of a comparison: ``difference`` (|z| crossed the efficacy boundary), ``futile``
(|z| below the beta-spending boundary: a difference as large as the smallest one of interest
is unlikely; at the budget this includes "these IRIs cannot show it"), or ``undecided``. Of
a half-width question: ``reached``, ``unreachable`` (the half-width projected to the budget,
or the floor set by the IRIs, is wider than the target) or ``undecided``.

Estimates after stopping: the point estimate is the plain estimate at the look (it is biased
away from 0 when a study stops early for a difference; ``benchmarks/sequential.py`` measures
by how much); the interval is the repeated confidence interval estimate +- c_k se, with c_k
the look's efficacy boundary on the t scale. Repeated intervals cover jointly over all looks
at 1 - alpha, whatever the reason the study stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import special

from percalign._checks import check_choice, check_float, check_int
from percalign.errors import ConfigError, unknown_name
from percalign.scoring.boundaries import SPENDING, next_bounds
from percalign.scoring.crossed import CrossedDesign
from percalign.scoring.moments import ContrastMoments, contrast_moments
from percalign.scoring.table import check_table

__all__ = [
    "Contrast",
    "Look",
    "Question",
    "SequentialPlan",
    "contrasts",
    "decide",
    "look",
    "look_counts",
    "settled",
]

#: outcomes that settle a question for good
SETTLED = frozenset({"difference", "futile", "reached", "unreachable"})
#: the information fraction before which no comparison stops for futility
FUTILITY_FROM = 0.5


@dataclass(frozen=True)
class Question:
    """One thing the study must decide.

    Attributes:
        column: the answer table's column whose levels are compared (e.g. ``model``).
        kind: ``compare`` (do two levels differ?) or ``halfwidth`` (each level's alignment
            to within +- ``difference``).
        levels: ``compare``: the two levels, or () for every pair (each pair then gets
            ``alpha`` / pairs, Bonferroni); ``halfwidth``: the levels, or () for all.
        difference: ``compare``: the smallest difference of interest (proportion correct,
            e.g. 0.1 for 10 points); ``halfwidth``: the half-width to reach.
        alpha: the false-positive rate (two-sided) of the question over all looks; for
            ``halfwidth``, 1 - the joint coverage of its repeated intervals.
        power: ``compare``: the chance of finding a difference of ``difference``.
        spending: the error-spending function (``obrien-fleming`` or ``pocock``).
    """

    column: str = "model"
    kind: str = "compare"
    levels: tuple[str, ...] = ()
    difference: float = 0.1
    alpha: float = 0.05
    power: float = 0.8
    spending: str = "obrien-fleming"

    def __post_init__(self) -> None:
        check_choice("Question", "kind", self.kind, ("compare", "halfwidth"))
        check_choice("Question", "spending", self.spending, SPENDING)
        check_float("Question", "difference", self.difference, 0.0, 1.0, low_open=True)
        check_float("Question", "alpha", self.alpha, 0.0, 0.5, low_open=True)
        check_float("Question", "power", self.power, 0.5, 1.0, low_open=True)
        if self.power >= 1.0:
            raise ConfigError(
                f"The 'power' parameter of Question must be below 1. Got {self.power!r}."
            )
        object.__setattr__(self, "levels", tuple(str(v) for v in self.levels))
        if self.kind == "compare" and len(self.levels) not in (0, 2):
            raise ConfigError(
                f"A 'compare' question names two levels of {self.column!r} (or none, for "
                f"every pair). Got {list(self.levels)}."
            )
        if len(set(self.levels)) != len(self.levels):
            raise ConfigError(
                f"A question names each level once. Got {list(self.levels)} for {self.column!r}."
            )

    def contrasts(self, levels: tuple[str, ...]) -> list[Contrast]:
        """The contrasts this question decides, over a column with ``levels``.

        Raises:
            UnknownNameError: a named level is not in the column.
        """
        for name in self.levels:
            if name not in levels:
                raise unknown_name(f"level of {self.column!r}", name, levels)
        if self.kind == "compare":
            pairs = [self.levels] if self.levels else list(combinations(levels, 2))
            if not pairs:
                raise ConfigError(
                    f"Comparing levels of {self.column!r} needs two levels; the answers have "
                    f"{list(levels)}."
                )
            return [
                Contrast(
                    f"{self.column}: {a} - {b}",
                    "compare",
                    _weights(levels, {a: 1.0, b: -1.0}),
                    self.difference,
                    self.alpha / len(pairs),
                    self.power,
                    self.spending,
                )
                for a, b in pairs
            ]
        return [
            Contrast(
                f"{self.column}: {a}",
                "halfwidth",
                _weights(levels, {a: 1.0}),
                self.difference,
                self.alpha,
                self.power,
                self.spending,
            )
            for a in (self.levels or levels)
        ]


def _weights(levels: tuple[str, ...], chosen: Mapping[str, float]) -> np.ndarray:
    return np.array([chosen.get(v, 0.0) for v in levels])


@dataclass(frozen=True)
class Contrast:
    """One decision: a weighted sum of the conditions' alignments
    (:meth:`Question.contrasts`)."""

    label: str
    kind: str
    weights: np.ndarray = field(repr=False)
    difference: float
    alpha: float
    power: float
    spending: str


@dataclass(frozen=True)
class SequentialPlan:
    """Declared questions, a budget and when to look.

    Attributes:
        questions: what the study must decide.
        budget: the most participants the study recruits.
        every: look after every ``every`` completed participants (and at the budget).
        fractions: or look at these fractions of the budget (increasing, in (0, 1]; the
            budget is always the last look).
    """

    questions: tuple[Question, ...]
    budget: int
    every: int | None = None
    fractions: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.questions:
            raise ConfigError("A sequential plan needs at least one question; declare one.")
        check_int("SequentialPlan", "budget", self.budget, low=2)
        if (self.every is None) == (not self.fractions):
            raise ConfigError(
                "A sequential plan looks either 'every' K participants or at 'fractions' of "
                "the budget; give exactly one of them."
            )
        if self.every is not None:
            check_int("SequentialPlan", "every", self.every, low=2)
        fractions = tuple(float(f) for f in self.fractions)
        if fractions and (any(not 0 < f <= 1 for f in fractions) or any(np.diff(fractions) <= 0)):
            raise ConfigError(
                f"The look 'fractions' must increase within (0, 1]. Got {list(self.fractions)}."
            )
        object.__setattr__(self, "fractions", fractions)
        first = self.looks()[0]
        if first < 2:
            raise ConfigError(
                f"The first look comes after {first} participant(s); a variance needs at "
                "least 2. Look later (a larger first fraction) or raise the budget."
            )
        if self.every is not None and self.every > self.budget:
            raise ConfigError(
                f"The budget of {self.budget} participants is smaller than the first look "
                f"(after {self.every}); raise the budget or look earlier."
            )

    def looks(self) -> tuple[int, ...]:
        """Participants completed at each look; the last is the budget."""
        return look_counts(self.budget, self.every, self.fractions)


def look_counts(
    budget: int, every: int | None, fractions: tuple[float, ...] = ()
) -> tuple[int, ...]:
    """Participants completed at each look of a plan with ``budget``, looking ``every`` K
    participants or at ``fractions`` of the budget; the last look is the budget.

    >>> look_counts(23, 5)
    (5, 10, 15, 20, 23)
    """
    if every is not None:
        counts = list(range(every, budget, every))
    else:
        counts = [int(np.ceil(f * budget - 1e-9)) for f in fractions]
    return (*sorted({c for c in counts if c < budget}), budget)


@dataclass(frozen=True)
class Look:
    """One contrast's state after one look.

    Attributes:
        label: the contrast (e.g. ``model: a - b``).
        participants: participants with answers at this look.
        fraction: information fraction spent on (1 at the budget).
        efficacy: the |z| boundary of this look (inf: nothing left to spend).
        futility: the |z| below which a comparison stops as futile (0: none yet).
        estimate: the plain estimate (proportion correct, or a difference of them).
        se: its standard error (crossed moments).
        z: the estimate over se, through Student's t on ``df`` onto the normal scale.
        df: Satterthwaite degrees of freedom.
        low, high: the repeated confidence interval (joint coverage 1 - alpha over looks).
        ceiling: ``compare``: the power at the smallest difference of interest with
            unlimited participants (these IRIs' limit); ``halfwidth``: the narrowest
            half-width these IRIs allow.
        decision: ``difference``, ``futile``, ``reached``, ``unreachable`` or ``undecided``.
    """

    label: str
    participants: int
    fraction: float
    efficacy: float
    futility: float
    estimate: float
    se: float
    z: float
    df: float
    low: float
    high: float
    ceiling: float
    decision: str


def look(
    contrast: Contrast,
    history: tuple[Look, ...],
    moments: ContrastMoments,
    budget: int,
    futility_from: float = FUTILITY_FROM,
) -> Look:
    """Decide one contrast at a look, given its earlier looks and its moments now.

    Args:
        contrast: what is decided.
        history: this contrast's earlier looks, oldest first.
        moments: the contrast's estimate and variance parts now (scalars).
        budget: the plan's budget of participants.
        futility_from: the information fraction from which a comparison may stop for
            futility (the default is the module's rule; ``benchmarks/sequential.py`` varies
            it to measure what the rule is worth).

    Returns:
        The look; its ``decision`` is final when it is in :data:`SETTLED`.
    """
    n = float(moments.participants)
    counts = np.array([h.participants for h in history] + [n], dtype=np.float64)
    variance = np.maximum(moments.variance_at(counts), 1e-300)
    at_budget = float(moments.variance_at(float(budget)))
    final = n >= budget
    fraction = 1.0 if final else float(min(at_budget / variance[-1], 1.0))
    if history:
        fraction = max(fraction, history[-1].fraction)
    futility, efficacy = next_bounds(
        [(h.futility, h.efficacy) for h in history],
        1.0 / variance,
        fraction,
        contrast.alpha,
        1 - contrast.power,
        contrast.difference,
        contrast.spending,
        futility_from if contrast.kind == "compare" else np.inf,
    )
    estimate = float(moments.estimate)
    se = float(np.sqrt(variance[-1]))
    df = float(moments.df)
    z = _z(estimate, se, df)
    half = _t_quantile(efficacy, df) * se
    floor = float(np.sqrt(moments.variance_at(np.inf)))
    z_fixed = float(-special.ndtri(contrast.alpha / 2))
    if contrast.kind == "compare":
        ceiling = float(special.ndtr(contrast.difference / floor - z_fixed)) if floor > 0 else 1.0
        decision = (
            "difference" if abs(z) >= efficacy else "futile" if abs(z) < futility else "undecided"
        )
    else:
        ceiling = z_fixed * floor
        if half <= contrast.difference:
            decision = "reached"
        elif z_fixed * np.sqrt(at_budget) > contrast.difference:
            decision = "unreachable"
        else:
            decision = "undecided"
    return Look(
        contrast.label,
        int(n),
        fraction,
        float(efficacy),
        float(futility),
        estimate,
        se,
        z,
        df,
        estimate - half,
        estimate + half,
        ceiling,
        decision,
    )


def _z(estimate: float, se: float, df: float) -> float:
    """estimate / se as a z: the normal quantile of its Student-t tail on ``df``."""
    if se <= 0:
        return float(np.sign(estimate) * np.inf)
    t = abs(estimate) / se
    tail = special.stdtr(df, -t)
    return (
        float(np.sign(estimate) * -special.ndtri(tail))
        if tail > 0
        else float(np.sign(estimate) * np.inf)
    )


def _t_quantile(z: float, df: float) -> float:
    """The Student-t (``df``) quantile with the normal tail of ``z``."""
    if not np.isfinite(z):
        return float("inf")
    return float(-special.stdtrit(df, special.ndtr(-z)))


def settled(history: Mapping[str, tuple[Look, ...]]) -> bool:
    """Whether every contrast is settled (the study may stop recruiting)."""
    return bool(history) and all(
        looks and looks[-1].decision in SETTLED for looks in history.values()
    )


def decide(
    plan: SequentialPlan,
    table: pd.DataFrame,
    history: Mapping[str, tuple[Look, ...]] | None = None,
) -> dict[str, tuple[Look, ...]]:
    """Take one look: decide every unsettled contrast of ``plan`` on the answers so far.

    Args:
        plan: the declared questions, budget and looks.
        table: every answer of the participants completed so far (``participant``, ``item``,
            ``correct``, the questions' columns, optionally ``target``).
        history: the looks so far, by contrast label (None at the first look).

    Returns:
        The history with this look appended to each unsettled contrast; settled ones keep
        their last look (a decision is never revisited).

    Raises:
        UnknownNameError: a question's column or level is not in the table.
        ConfigError: a column whose levels split items (see :class:`CrossedDesign`).
    """
    history = dict(history or {})
    for contrast, design in contrasts(plan.questions, table):
        past = history.get(contrast.label, ())
        if past and past[-1].decision in SETTLED:
            continue
        moments = contrast_moments(
            design.hits, design.counts, design.condition, design.target, contrast.weights
        )
        history[contrast.label] = (*past, look(contrast, past, moments, plan.budget))
    return history


def contrasts(
    questions: tuple[Question, ...], table: pd.DataFrame
) -> list[tuple[Contrast, CrossedDesign]]:
    """Every contrast of ``questions`` over the levels ``table`` has, with the crossed design
    of its column.

    Raises:
        UnknownNameError: a question's column or level is not in the table.
        ConfigError: a column whose levels split items (see :class:`CrossedDesign`).
    """
    out: list[tuple[Contrast, CrossedDesign]] = []
    for question in questions:
        if question.column not in table.columns:
            raise unknown_name(
                "column", question.column, [str(c) for c in table.columns], where="in the answers"
            )
        design = CrossedDesign.of(check_table(table, [question.column]), question.column)
        levels = tuple(str(v) for v in design.levels)
        out.extend((contrast, design) for contrast in question.contrasts(levels))
    return out
