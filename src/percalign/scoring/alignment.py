"""Alignment per group: proportion correct, crossed-bootstrap CI and test against chance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from percalign.scoring.compare import holm
from percalign.scoring.crossed import CrossedDesign, percentile_p
from percalign.scoring.table import check_table

__all__ = ["alignment", "paper_table"]


def alignment(
    table: pd.DataFrame,
    by: Sequence[str] = (),
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Alignment (share of answers naming the IRI's own target) per group.

    Args:
        table: the long answer table (see :mod:`percalign.scoring.table`).
        by: grouping columns (``["model", "layer"]``); empty for one overall row.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.
        level: confidence level of the interval.

    Returns:
        One row per group: counts, ``alignment``, its CI from the crossed bootstrap
        (:class:`~percalign.scoring.crossed.CrossedDesign`: participants, targets, items within
        targets; ``ci_low``, ``ci_high``), ``design_effect`` (the bootstrap variance over the
        binomial variance p(1 - p)/n of independent answers: what clustering costs), chance,
        the two-sided test of alignment against chance from the same bootstrap (``p_chance``)
        and the same p-values Holm-corrected over the rows (``p_chance_holm``).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"participant": list("aabb"), "item": list("xyxy"),
        ...                   "correct": [1, 1, 1, 0]})
        >>> float(alignment(t, n_boot=100)["alignment"].iloc[0])
        0.75
    """
    table = check_table(table, by)
    groups = table.groupby(list(by), sort=True, observed=True) if by else [((), table)]
    alpha = (1 - level) / 2
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        n, k = len(group), int(group["correct"].sum())
        p = k / n
        chance = float(group["chance"].mean())
        reps = CrossedDesign.of(group).replicates(n_boot, seed)[:, 0]
        lo, hi = np.nanquantile(reps, [alpha, 1 - alpha])
        binomial = p * (1 - p) / n
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "answers": n,
                "participants": group["participant"].nunique(),
                "items": group["item"].nunique(),
                "alignment": p,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "design_effect": float(np.nanvar(reps) / binomial) if binomial else float("nan"),
                "chance": chance,
                "p_chance": percentile_p(reps, chance),
            }
        )
    out = pd.DataFrame(rows)
    out["p_chance_holm"] = holm(out["p_chance"].to_numpy())
    return out


def paper_table(scores: pd.DataFrame, rows: str, columns: str) -> pd.DataFrame:
    """Alignment laid out like the paper's tables (e.g. training x architecture), as
    ``"72.5 [65.0, 80.0]"`` strings in percent (95% crossed-bootstrap CI); ``scores`` comes
    from :func:`alignment` grouped by at least ``rows`` and ``columns``."""
    cells = scores.assign(
        cell=[
            f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
            for a, lo, hi in zip(
                scores["alignment"], scores["ci_low"], scores["ci_high"], strict=True
            )
        ]
    )
    return cells.pivot_table(index=rows, columns=columns, values="cell", aggfunc="first")
