"""Alignment per group: proportion correct, crossed-bootstrap CI, Wilson CI, binomial test."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from scipy import stats

from percalign.scoring.stats import Cells, crossed_bootstrap, wilson
from percalign.scoring.table import check_table

__all__ = ["alignment", "paper_table"]


def alignment(
    table: pd.DataFrame, by: Sequence[str] = (), *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Alignment (share of answers naming the IRI's own target) per group.

    Args:
        table: the long answer table (see :mod:`percalign.scoring.table`).
        by: grouping columns (``["model", "layer"]``); empty for one overall row.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        One row per group: counts, ``alignment``, its 95% CI from a bootstrap that resamples
        participants and items (``ci_low``, ``ci_high``), the Wilson interval (which treats
        answers as independent, so it is narrower), chance, and the exact two-sided binomial
        test of alignment against chance (``p_chance``).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"participant": list("aabb"), "item": list("xyxy"),
        ...                   "correct": [1, 1, 1, 0]})
        >>> float(alignment(t, n_boot=100)["alignment"].iloc[0])
        0.75
    """
    table = check_table(table, by)
    groups = table.groupby(list(by), sort=True, observed=True) if by else [((), table)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        n, k = len(group), int(group["correct"].sum())
        chance = float(group["chance"].mean())
        lo, hi, _ = crossed_bootstrap(Cells.of(group), n_boot=n_boot, seed=seed)
        w_lo, w_hi = wilson(k, n)
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "answers": n,
                "participants": group["participant"].nunique(),
                "items": group["item"].nunique(),
                "alignment": k / n,
                "ci_low": lo,
                "ci_high": hi,
                "wilson_low": w_lo,
                "wilson_high": w_hi,
                "chance": chance,
                "p_chance": stats.binomtest(k, n, chance).pvalue,
            }
        )
    return pd.DataFrame(rows)


def paper_table(scores: pd.DataFrame, rows: str, columns: str) -> pd.DataFrame:
    """Alignment laid out like the paper's tables (e.g. training x architecture), as
    ``"72.5 [65.0, 80.0]"`` strings in percent; ``scores`` comes from :func:`alignment`
    grouped by at least ``rows`` and ``columns``."""
    cells = scores.assign(
        cell=[
            f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
            for a, lo, hi in zip(
                scores["alignment"], scores["ci_low"], scores["ci_high"], strict=True
            )
        ]
    )
    return cells.pivot_table(index=rows, columns=columns, values="cell", aggfunc="first")
