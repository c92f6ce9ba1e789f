"""Comparisons of conditions (models, layers, seed types, losses): differences in alignment
with crossed-bootstrap CIs and p-values, and Holm's correction over all pairs."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from percalign.scoring.crossed import CrossedDesign, percentile_p
from percalign.scoring.table import check_table

__all__ = ["compare", "holm"]


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order.

    The i-th smallest of m p-values is multiplied by m - i + 1, then made non-decreasing.

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()  # 3 x 0.01; 2 x 0.03; max(1 x 0.04, 0.06)
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, (m - rank) * p[idx])
        adjusted[idx] = min(1.0, running)
    return adjusted


def compare(
    table: pd.DataFrame,
    column: str = "model",
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Every pair of levels of ``column``: difference in alignment, its CI and a p-value.

    One crossed resampling (:class:`~percalign.scoring.crossed.CrossedDesign`) serves every
    pair: participants are drawn once for all levels (so participants who judged both levels
    pair their answers), targets once for the levels that share them (so a paired design keeps
    its power), and each level's items within their targets. The CI is the percentile interval
    of the resampled differences; ``p`` is two-sided, from the same replicates
    (:func:`~percalign.scoring.crossed.percentile_p`), and ``p_holm`` corrects it over all
    pairs.

    Returns:
        One row per pair ``a`` < ``b``: ``alignment_a``, ``alignment_b``, ``difference``
        (a - b), ``ci_low``, ``ci_high``, ``p``, ``p_holm``.
    """
    table = check_table(table, [column])
    design = CrossedDesign.of(table, column)
    point = design.estimates()
    reps = design.replicates(n_boot, seed)
    alpha = (1 - level) / 2
    rows = []
    for a, b in combinations(range(len(design.levels)), 2):
        diffs = reps[:, a] - reps[:, b]
        lo, hi = np.nanquantile(diffs, [alpha, 1 - alpha])
        rows.append(
            {
                "a": design.levels[a],
                "b": design.levels[b],
                "alignment_a": point[a],
                "alignment_b": point[b],
                "difference": point[a] - point[b],
                "ci_low": float(lo),
                "ci_high": float(hi),
                "p": percentile_p(diffs, 0.0),
            }
        )
    out = pd.DataFrame(
        rows,
        columns=["a", "b", "alignment_a", "alignment_b", "difference", "ci_low", "ci_high", "p"],
    )
    out["p_holm"] = holm(out["p"].to_numpy())
    return out
