"""Where a new participant's answers decide most: allocation by uncertainty only.

A sequential study (:mod:`percalign.scoring.sequential`) should spend new answers on the
conditions of questions still undecided, not on settled ones. The functions here rank items
for a new participant's slots from the *uncertainty* of the answers so far (how many answers
each item has, how much of each condition's variance more participants can still remove)
and never from the answers themselves: which way an answer went never enters, so allocation
cannot steer an estimate (``benchmarks/sequential.py`` measures the bias with and without
it). They are pure: the survey service calls them with its own counts.

The plan's guarantees come first: items below the minimum number of judgments are served
before any other, fewest first, and a participant never gets an item twice. Sides, catch and
repeat trials are the survey plan's business and are kept by its caller.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from percalign._checks import check_int
from percalign.errors import ConfigError
from percalign.scoring.crossed import CrossedDesign
from percalign.scoring.moments import contrast_moments
from percalign.scoring.sequential import SETTLED, Look, SequentialPlan

__all__ = ["allocate", "condition_needs", "priorities"]


def priorities(
    judgments: np.ndarray, condition: np.ndarray, need: np.ndarray, minimum: int
) -> np.ndarray:
    """(..., I) how much one more answer to each item is worth; larger first.

    Items with fewer than ``minimum`` judgments rank above every other (fewest first). Then
    an item is worth its condition's ``need`` over (n + 1)(n + 2), n its judgments: the
    marginal fall of an item mean's variance, so answers spread over a condition's items.

    Args:
        judgments: (..., I) judgments per item so far.
        condition: (I,) int: each item's condition.
        need: (..., C) >= 0: how much each condition still needs answers (see
            :func:`condition_needs`; 0 for conditions whose questions are settled).
        minimum: the plan's minimum judgments per item.
    """
    n = np.asarray(judgments, dtype=np.float64)
    worth = np.take(np.asarray(need, dtype=np.float64), condition, axis=-1) / ((n + 1) * (n + 2))
    scale = 1.0 + np.max(worth, axis=-1, keepdims=True, initial=0.0)
    below = n < minimum
    return np.where(below, scale * (1.0 + (minimum - n)), worth)


def allocate(
    judgments: np.ndarray,
    condition: np.ndarray,
    need: np.ndarray,
    seen: np.ndarray,
    slots: int,
    minimum: int,
    seed: int = 0,
) -> np.ndarray:
    """The items for a new participant's ``slots``, most useful first.

    Args:
        judgments: (I,) judgments per item so far.
        condition: (I,) int: each item's condition.
        need: (C,) per-condition need (:func:`condition_needs`).
        seen: (I,) bool: items this participant has already had (never given again).
        slots: how many items to choose.
        minimum: the plan's minimum judgments per item.
        seed: breaks ties between items of equal worth (a seeded draw, not an answer).

    Raises:
        ConfigError: fewer unseen items than slots.

    >>> allocate(np.array([3, 0, 5, 6]), np.array([0, 0, 1, 1]), np.array([0.0, 1.0]),
    ...          np.zeros(4, bool), slots=2, minimum=1).tolist()
    [1, 2]
    """
    check_int("allocate", "slots", slots, low=0)
    seen = np.asarray(seen, dtype=bool)
    if slots > int((~seen).sum()):
        raise ConfigError(
            f"A participant needs {slots} items but only {int((~seen).sum())} are left unseen; "
            "lower the trials per participant or add IRIs."
        )
    worth = priorities(judgments, condition, need, minimum)
    jitter = np.random.default_rng(seed).random(worth.shape)
    order = np.lexsort((jitter, -np.where(seen, -np.inf, worth)))
    return order[:slots]


def condition_needs(
    plan: SequentialPlan,
    table: pd.DataFrame,
    history: Mapping[str, tuple[Look, ...]],
    column: str,
) -> dict[str, float]:
    """Each level of ``column``: the variance of its alignment that more participants can
    still remove (the participant part, :func:`~percalign.scoring.moments.contrast_moments`),
    counted once per unsettled question that involves it; 0 for levels whose questions are
    all settled.

    The variance parts are quadratic in the residuals, so they do not change when every
    answer is reversed: the needs depend on how uncertain the answers are, not on which way
    they went.

    Raises:
        ConfigError: ``column`` is not a column of any of the plan's questions.
    """
    questions = [q for q in plan.questions if q.column == column]
    if not questions:
        raise ConfigError(
            f"No question of the plan compares {column!r}; allocate over one of "
            f"{sorted({q.column for q in plan.questions})}."
        )
    design = CrossedDesign.of(table, column)
    levels = tuple(str(v) for v in design.levels)
    need = dict.fromkeys(levels, 0.0)
    for question in questions:
        for contrast in question.contrasts(levels):
            past = history.get(contrast.label, ())
            if past and past[-1].decision in SETTLED:
                continue
            for c in np.flatnonzero(contrast.weights):
                alone = np.eye(len(levels))[c]
                part = contrast_moments(
                    design.hits, design.counts, design.condition, design.target, alone
                ).participant
                need[levels[c]] += float(part)
    return need
