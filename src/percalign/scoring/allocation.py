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

__all__ = ["allocate", "condition_needs", "quotas"]


def quotas(need: np.ndarray, slots: int) -> np.ndarray:
    """(C,) how many of ``slots`` each condition gets: in proportion to ``need`` (largest
    remainders), evenly when every need is 0.

    >>> quotas(np.array([0.0, 1.0, 3.0]), 10).tolist()
    [0, 3, 7]
    """
    need = np.clip(np.asarray(need, dtype=np.float64), 0.0, None)
    share = need / need.sum() if need.sum() > 0 else np.full(need.shape, 1.0 / need.size)
    exact = share * slots
    out = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: slots - int(out.sum())]] += 1
    return out


def allocate(
    judgments: np.ndarray,
    condition: np.ndarray,
    need: np.ndarray,
    seen: np.ndarray,
    slots: int,
    minimum: int,
    seed: int = 0,
) -> np.ndarray:
    """The items for a new participant's ``slots``.

    First the items below ``minimum`` judgments, fewest first (the plan's guarantee). The
    other slots are split over the conditions in proportion to their ``need``
    (:func:`quotas`), and each condition gives its least-judged items. Every participant of
    a stretch between looks thus gets the same mix of conditions, so a participant's own
    leniency cancels in a comparison as it does in a balanced plan. A condition short of
    unseen items passes its slots on to the others.

    Args:
        judgments: (I,) judgments per item so far.
        condition: (I,) int: each item's condition.
        need: (C,) per-condition need (:func:`condition_needs`); all 0: an even split.
        seen: (I,) bool: items this participant has already had (never given again).
        slots: how many items to choose.
        minimum: the plan's minimum judgments per item.
        seed: breaks ties between equally judged items (a seeded draw, not an answer).

    Raises:
        ConfigError: fewer unseen items than slots.

    >>> allocate(np.array([3, 0, 5, 6, 7]), np.array([0, 0, 1, 1, 1]), np.array([0.0, 1.0]),
    ...          np.zeros(5, bool), slots=2, minimum=1).tolist()
    [1, 2]
    """
    check_int("allocate", "slots", slots, low=0)
    judged = np.asarray(judgments, dtype=np.float64)
    condition = np.asarray(condition, dtype=np.int64)
    free = ~np.asarray(seen, dtype=bool)
    if slots > int(free.sum()):
        raise ConfigError(
            f"A participant needs {slots} items but only {int(free.sum())} are left unseen; "
            "lower the trials per participant or add IRIs."
        )
    jitter = np.random.default_rng(seed).random(judged.shape)
    order = np.lexsort((jitter, judged))  # least judged first, ties at random
    below = [i for i in order if free[i] and judged[i] < minimum][:slots]
    chosen = list(below)
    free[below] = False
    need = np.asarray(need, dtype=np.float64).copy()
    while len(chosen) < slots:
        left = np.bincount(condition[free], minlength=need.size)
        want = quotas(
            np.where(left > 0, need, 0.0)
            if (need[left > 0] > 0).any()
            else (left > 0).astype(np.float64),
            slots - len(chosen),
        )
        for c in np.flatnonzero(want):
            take = [i for i in order if free[i] and condition[i] == c][: want[c]]
            chosen.extend(take)
            free[take] = False
    return np.asarray(chosen[:slots], dtype=np.int64)


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
