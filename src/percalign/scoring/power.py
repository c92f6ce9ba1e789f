"""How many answers are needed: for a CI half-width, or to tell two models apart."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from scipy import stats

from percalign._checks import check_float
from percalign.errors import ConfigError

__all__ = ["answers_for_difference", "answers_for_halfwidth", "design_effect"]


def answers_for_halfwidth(
    p: float, halfwidth: float, design_effect: float = 1.0, level: float = 0.95
) -> int:
    """Answers needed so that a proportion near ``p`` has a CI of +- ``halfwidth``.

    ``design_effect`` inflates the count for correlated answers (several per participant and
    item); estimate it from a pilot as (crossed-bootstrap variance) / (binomial variance).
    """
    check_float("answers_for_halfwidth", "p", p, low=0.0, high=1.0)
    check_float("answers_for_halfwidth", "halfwidth", halfwidth, low=0.0, high=0.5, low_open=True)
    z = stats.norm.ppf(0.5 + level / 2)
    return math.ceil(design_effect * z * z * p * (1 - p) / (halfwidth * halfwidth))


def answers_for_difference(
    p1: float, p2: float, power: float = 0.8, alpha: float = 0.05, design_effect: float = 1.0
) -> int:
    """Answers per model to detect alignment ``p1`` vs ``p2`` (two-sided, normal approximation)."""
    check_float("answers_for_difference", "p1", p1, low=0.0, high=1.0)
    check_float("answers_for_difference", "p2", p2, low=0.0, high=1.0)
    if p1 == p2:
        raise ConfigError(
            f"answers_for_difference needs p1 and p2 to differ (a difference to detect); got "
            f"p1 = p2 = {p1}."
        )
    za = stats.norm.ppf(1 - alpha / 2)
    zb = stats.norm.ppf(power)
    pbar = (p1 + p2) / 2
    n = (
        (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
        / (p1 - p2)
    ) ** 2
    return math.ceil(design_effect * n)


def design_effect(alignment_row: Mapping[str, Any] | pd.Series, answers: int) -> float:
    """Variance of the crossed bootstrap over the binomial variance, from an alignment row
    (its 95% CI half-width): how much clustering in participants and items costs. Since the
    crossed bootstrap is conservative (about 2 even without clustering), so is this."""
    p = float(alignment_row["alignment"])
    lo, hi = float(alignment_row["ci_low"]), float(alignment_row["ci_high"])
    binomial = p * (1 - p) / answers
    crossed = ((hi - lo) / (2 * stats.norm.ppf(0.975))) ** 2
    return max(1.0, crossed / binomial) if binomial > 0 else 1.0
