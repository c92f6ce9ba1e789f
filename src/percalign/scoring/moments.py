"""Closed-form variance of a contrast of crossed means: two-way cluster moments.

A contrast of conditions, ``sum_c w_c * mean_c`` (one condition's alignment, or the
difference of two models), is estimated from answers that cluster by participant and by
target (an IRI shown with its candidates; IRIs of one target cluster together). Its variance
has two parts, and only one of them shrinks as participants arrive:

- the **participant part** (participants' own effects and answer noise) falls as
  1/participants;
- the **item part** (the IRIs' and targets' effects) is fixed once the IRIs are: more
  participants cannot remove it, only more IRIs can.

Both come from moments of the residuals, with no resampling, so they are cheap enough for
thousands of simulated studies at every look. Linearize the ratio estimator: each answer
contributes ``s = w_c (y - mean_c) / n_c``. Then (two-way cluster moments, as for crossed
random effects)

- ``V_P`` = sum over participants of (their summed s)^2 estimates the participant part;
- ``V_T`` = sum over targets of (their summed s)^2 estimates the item part plus the answer
  noise, which ``V_P`` already holds;
- ``V_PT`` = sum over participant x target cells of (their summed s)^2 estimates that answer
  noise, so the item part is ``V_T - V_PT`` (at least 0).

Centring at the condition means removes one degree of freedom per participant sum and one
per stratum of targets (targets that appear in the same conditions), so ``V_P`` is scaled by
n/(n - 1) and ``V_T`` by G/(G - strata). The degrees of freedom of the total are
Satterthwaite's (participants - 1 for the participant part, G - strata for the item part);
:mod:`percalign.scoring.sequential` turns the Wald statistic into a z through Student's t on
those degrees of freedom, which keeps its rate with few IRIs.

Every array may carry leading batch axes (many simulated studies at once).

:mod:`percalign.scoring.components` estimates the same true variance another way, from
components of one answer's variance (participant, target, IRI, residual), so that planning
can ask about layouts a pilot did not have (more IRIs, other answers per participant, the
crossed bootstrap's intervals). Here the question is narrower, the variance of this estimate
as observed and how it falls with more participants, and the answer must be exact for the
unbalanced allocations of a sequential survey and cheap enough for every look of thousands of
simulated studies; so the two stay separate, and a test checks that they agree on a design
both can describe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from percalign.errors import ConfigError

__all__ = ["ContrastMoments", "contrast_moments"]


@dataclass(frozen=True)
class ContrastMoments:
    """A contrast's estimate and its variance in two parts (arrays of the batch shape).

    Attributes:
        estimate: the contrast of the conditions' proportions correct.
        participant: the part of the variance that falls as 1/participants.
        item: the part fixed by the IRIs (more participants cannot remove it).
        df: Satterthwaite degrees of freedom of ``participant + item``.
        participants: participants with at least one answer in the contrast.
    """

    estimate: np.ndarray
    participant: np.ndarray
    item: np.ndarray
    df: np.ndarray
    participants: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """The variance of ``estimate`` now."""
        return self.participant + self.item

    def variance_at(self, participants: float | np.ndarray) -> np.ndarray:
        """The variance projected to ``participants`` who answer as the present ones did
        (``np.inf``: the floor set by the IRIs)."""
        scale = np.divide(self.participants, participants)
        return self.participant * scale + self.item


def contrast_moments(
    hits: np.ndarray,
    counts: np.ndarray,
    condition: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray,
) -> ContrastMoments:
    """The estimate and crossed moment variance of ``sum_c weights[c] * mean_c``.

    Args:
        hits: (..., P, I) correct answers per participant and item.
        counts: (..., P, I) answers per participant and item.
        condition: (I,) int in [0, C): each item's condition.
        target: (I,) int: each item's target (the item itself when IRIs have no shared
            targets).
        weights: (C,) the contrast's weight on each condition, e.g. (1, -1) for a
            difference, (1,) for one condition's alignment.

    Raises:
        ConfigError: a weighted condition has no items.

    >>> hits = np.array([[1, 0], [1, 1], [0, 0]], dtype=float)
    >>> m = contrast_moments(hits, np.ones_like(hits), np.array([0, 1]), np.array([0, 1]),
    ...                      np.array([1.0, -1.0]))
    >>> round(float(m.estimate), 3)
    0.333
    """
    hits = np.asarray(hits, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    condition = np.asarray(condition, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    used = weights[condition] != 0
    missing = [c for c in np.flatnonzero(weights) if not np.any(condition == c)]
    if missing:
        raise ConfigError(
            f"The contrast weighs condition {missing[0]}, which has no items; weigh only "
            "conditions that have IRIs."
        )
    hits, counts = hits[..., used], counts[..., used]
    cond = condition[used]
    _, targ = np.unique(np.asarray(target)[used], return_inverse=True)
    onehot_c = np.eye(len(weights))[cond]  # (I, C)
    onehot_t = np.eye(int(targ.max()) + 1)[targ]  # (I, T)

    n_c = counts.sum(axis=-2) @ onehot_c  # (..., C)
    h_c = hits.sum(axis=-2) @ onehot_c
    mean_c = np.divide(h_c, n_c, out=np.zeros_like(h_c), where=n_c > 0)
    estimate = (weights * mean_c).sum(axis=-1)
    per_answer = np.divide(weights, n_c, out=np.zeros_like(n_c), where=n_c > 0)
    # s: each participant x item cell's share of the linearized estimate
    s = (hits - counts * (mean_c @ onehot_c.T)[..., None, :]) * (per_answer @ onehot_c.T)[
        ..., None, :
    ]
    v_p = np.square(s.sum(axis=-1)).sum(axis=-1)
    by_target = s @ onehot_t  # (..., P, T)
    v_t = np.square(by_target.sum(axis=-2)).sum(axis=-1)
    v_pt = np.square(by_target).sum(axis=(-2, -1))

    n = (counts.sum(axis=-1) > 0).sum(axis=-1).astype(np.float64)
    seen = (counts.sum(axis=-2) @ onehot_t) > 0  # (..., T): targets with answers
    g = seen.sum(axis=-1).astype(np.float64)
    strata = _strata(cond, targ, len(weights))
    df_p = np.maximum(n - 1, 1.0)
    df_i = np.maximum(g - strata, 1.0)
    participant = v_p * np.where(n > 1, n / df_p, 1.0)
    v_t = v_t * np.where(g > strata, g / df_i, 1.0)
    # V_PT holds the answer noise E plus a = 1/(targets per participant) of the participant
    # part and b = 1/(participants per target) of the item part: solve for E
    cells = ((counts @ onehot_t) > 0).sum(axis=(-2, -1)).astype(np.float64)
    a = np.maximum(n, 1.0) / np.maximum(cells, 1.0)
    b = np.maximum(g, 1.0) / np.maximum(cells, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        solved = (v_pt - a * participant - b * v_t) / (1.0 - a - b)
    noise = np.where(a + b < 0.9, solved, v_pt)
    item = np.maximum(v_t - np.clip(noise, 0.0, v_pt), 0.0)
    denom = np.square(participant) / df_p + np.square(item) / df_i
    total = participant + item
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denom > 0, np.square(total) / denom, df_p)
    return ContrastMoments(estimate, participant, item, df, n)


def _strata(condition: np.ndarray, target: np.ndarray, n_conditions: int) -> float:
    """How many sets of targets by the conditions they appear in (each loses one degree of
    freedom to the centring at the condition means)."""
    seen = np.zeros((int(target.max()) + 1, n_conditions), dtype=bool)
    seen[target, condition] = True
    return float(len(np.unique(seen, axis=0)))
