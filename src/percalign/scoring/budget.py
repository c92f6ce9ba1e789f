"""The budget a sequential design needs: participants for its declared power, from a pilot.

A fixed design with the declared power needs the information ``I_fixed = ((z_{1 - alpha/2}
+ z_{power}) / difference)^2`` (1 / the variance of the difference). A design that looks
several times and may stop early needs more at its last look: its early boundaries are wider
and its futility stops lose some studies a fixed design would win. How much more (the
inflation factor) follows from alpha, the power, the spending function and where the looks
fall, and here the looks fall unevenly in information: the IRIs are fixed, so each new
participant adds less information than the one before
(:meth:`~percalign.scoring.moments.ContrastMoments.variance_at`).

:func:`requirement` therefore does not apply a tabulated factor. For each candidate budget it
projects the information at every look from a pilot's variance parts, builds the boundaries
the looks will use (:func:`~percalign.scoring.boundaries.schedule`, with the same futility
rule as :func:`~percalign.scoring.sequential.look`) and computes the design's power; the
budget is the smallest one whose power reaches the declared power. A half-width question
needs the final repeated interval, the last look's boundary times the standard error at the
budget, within its half-width.

The pilot's variance parts are taken as true, and the information of every look (and of the
fixed design) is discounted for its degrees of freedom: a look's z is its t carried through
Student's t on the Satterthwaite degrees of freedom, so it is smaller than the normal theory's
by about z / t at the test's quantile, and the variance is counted (t / z)^2 times larger.
Without it a fixed design planned by the normal approximation fell 2-3 points short of its
declared power in simulation (``benchmarks/sequential.py``, which measures both designs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from percalign.scoring.boundaries import schedule
from percalign.scoring.moments import ContrastMoments, contrast_moments
from percalign.scoring.sequential import (
    FUTILITY_FROM,
    Contrast,
    Question,
    contrasts,
    look_counts,
)

__all__ = ["Requirement", "effective_variance", "required_budget", "requirement"]

#: the most participants a budget considers (beyond it a target counts as out of reach)
MOST = 100_000


@dataclass(frozen=True)
class Requirement:
    """What one contrast needs (:func:`requirement`).

    Attributes:
        label: the contrast (e.g. ``model: a - b``).
        participants: the smallest budget whose design reaches the declared power (compare)
            or half-width (halfwidth); None when these IRIs cannot, at any budget.
        fixed: the participants a fixed design (one look) needs; None when it cannot.
        achieved: at ``participants``: the design's power (compare) or its final repeated
            half-width (halfwidth); nan when out of reach.
        inflation: the information at ``participants`` over the fixed design's (nan when
            out of reach).
        ceiling: ``compare``: the fixed test's power with unlimited participants;
            ``halfwidth``: the narrowest half-width these IRIs allow.
    """

    label: str
    participants: int | None
    fixed: float | None
    achieved: float
    inflation: float
    ceiling: float


def requirement(
    contrast: Contrast,
    moments: ContrastMoments,
    every: int | None = None,
    fractions: tuple[float, ...] = (),
) -> Requirement:
    """The budget ``contrast`` needs, its looks ``every`` K participants or at ``fractions``
    of the budget (neither: one look, the fixed design), with the variance parts of a pilot
    (``moments``, scalars).

    >>> from percalign.scoring.sequential import Question
    >>> (c,) = Question(levels=("a", "b"), difference=0.1).contrasts(("a", "b"))
    >>> pilot = ContrastMoments(*map(np.float64, (0.0, 0.02, 0.0, 9.0, 10.0)))
    >>> r = requirement(c, pilot, every=5)
    >>> round(r.fixed, 1), r.participants, round(r.achieved, 3)
    (159.4, 195, 0.8)
    """
    z_alpha = float(-special.ndtri(contrast.alpha / 2))
    beta = 1 - contrast.power
    floor = float(moments.variance_at(np.inf))
    if contrast.kind == "compare":
        needed = float(np.square(contrast.difference / (z_alpha - special.ndtri(beta))))
        ceiling = (
            float(special.ndtr(contrast.difference / np.sqrt(floor) - z_alpha))
            if floor > 0
            else 1.0
        )
    else:
        needed = float(np.square(contrast.difference / z_alpha))
        ceiling = z_alpha * float(np.sqrt(floor))
    fixed = _participants_for(moments, needed, contrast.alpha)

    def measure(budget: int) -> float:
        looks = np.array(look_counts(budget, every, fractions), dtype=np.float64)
        info = 1.0 / np.maximum(effective_variance(moments, looks, contrast.alpha), 1e-300)
        if contrast.kind == "compare":
            design = schedule(
                info, contrast.difference, contrast.alpha, beta, contrast.spending, FUTILITY_FROM
            )
            return design.power
        design = schedule(info, 0.0, contrast.alpha, beta, contrast.spending, np.inf)
        return float(design.efficacy[-1] / np.sqrt(info[-1]))

    def enough(budget: int) -> bool:
        value = measure(budget)
        return (
            value >= contrast.power if contrast.kind == "compare" else value <= contrast.difference
        )

    step = every or 1
    budget = None if fixed is None else _smallest(enough, step * int(np.ceil(fixed / step)), step)
    if fixed is None or budget is None:
        return Requirement(contrast.label, None, fixed, float("nan"), float("nan"), ceiling)
    inflation = float(
        effective_variance(moments, np.array([fixed]), contrast.alpha)[0]
        / effective_variance(moments, np.array([float(budget)]), contrast.alpha)[0]
    )
    return Requirement(contrast.label, budget, fixed, measure(budget), inflation, ceiling)


def required_budget(
    questions: tuple[Question, ...],
    pilot: pd.DataFrame,
    every: int | None = None,
    fractions: tuple[float, ...] = (),
) -> dict[str, Requirement]:
    """What each contrast of ``questions`` needs, from the answers of a pilot; a plan's
    budget is the largest ``participants`` (every question sees the same participants).

    Raises:
        UnknownNameError: a question's column or level is not in the pilot.
    """
    out = {}
    for contrast, design in contrasts(questions, pilot):
        moments = contrast_moments(
            design.hits, design.counts, design.condition, design.target, contrast.weights
        )
        out[contrast.label] = requirement(contrast, moments, every, fractions)
    return out


def _participants_for(moments: ContrastMoments, variance: float, alpha: float) -> float | None:
    """Participants at which the effective variance (:func:`effective_variance`) falls to
    ``variance`` (None: the IRIs' floor is above it, or more than :data:`MOST` are needed)."""

    def excess(n: float) -> float:
        return float(effective_variance(moments, np.array([n]), alpha)[0]) - variance

    if excess(MOST) > 0:
        return None
    low = 2.0
    if excess(low) <= 0:
        return low
    return float(optimize.brentq(excess, low, MOST, xtol=1e-6))


def effective_variance(
    moments: ContrastMoments, participants: np.ndarray, alpha: float
) -> np.ndarray:
    """The variance projected to ``participants``, times (t / z)^2 at the two-sided ``alpha``
    quantile, t on the projected Satterthwaite degrees of freedom: a look turns its t into a
    z through Student's t, which costs as much power as this much more variance would.

    The item part's degrees of freedom come from the pilot's: Satterthwaite's formula
    solved for them, given the participant part's (participants - 1)."""
    n0 = float(moments.participants)
    part, item, df = float(moments.participant), float(moments.item), float(moments.df)
    rest = np.square(part + item) / df - np.square(part) / max(n0 - 1, 1.0)
    df_item = np.square(item) / rest if rest > 0 and item > 0 else np.inf
    by_participants = part * n0 / np.asarray(participants, dtype=np.float64)
    total = by_participants + item
    with np.errstate(divide="ignore"):
        df_now = np.square(total) / (
            np.square(by_participants) / np.maximum(participants - 1.0, 1.0)
            + np.square(item) / df_item
        )
    ratio = special.stdtrit(df_now, 1 - alpha / 2) / -special.ndtri(alpha / 2)
    return total * np.square(ratio)


def _smallest(enough: Callable[[int], bool], start: int, step: int) -> int | None:
    """The smallest multiple of ``step`` from ``start`` that is ``enough``, by doubling then
    bisection (taking ``enough`` as monotone in the budget, as power and the repeated
    half-width are up to the small steps of adding a look); None beyond :data:`MOST`."""
    low, high = start - step, start
    while not enough(high):
        low, high = high, start + 2 * (high - start + step) - step
        if high > MOST:
            return None
    while high - low > step:
        mid = low + step * ((high - low) // (2 * step))
        low, high = (mid, high) if not enough(mid) else (low, mid)
    return high
