"""Agreement between participants: vote fractions, Fleiss' kappa, Krippendorff's alpha,
split-half reliability with the Spearman-Brown correction (the noise ceiling)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from percalign.errors import InputShapeError
from percalign.scoring.table import check_table

__all__ = ["fleiss_kappa", "krippendorff_alpha", "noise_ceiling", "vote_fractions"]


def vote_fractions(table: pd.DataFrame, column: str = "choice") -> pd.DataFrame:
    """Per item, the share of answers for each category of ``column`` (rows sum to 1)."""
    counts = pd.crosstab(table["item"], table[column])
    return counts.div(counts.sum(axis=1), axis=0)


def _count_matrix(table: pd.DataFrame, column: str) -> np.ndarray:
    return pd.crosstab(table["item"], table[column]).to_numpy(dtype=np.float64)


def fleiss_kappa(table: pd.DataFrame, column: str = "choice") -> float:
    """Fleiss' kappa over items rated by the same number of raters (Fleiss 1971).

    ``table`` has one row per answer with ``item`` and the category in ``column``.

    >>> import pandas as pd
    >>> votes = {"a": [0, 0, 0], "b": [1, 1, 1], "c": [0, 1, 1]}
    >>> t = pd.DataFrame([{"item": i, "choice": v} for i, vs in votes.items() for v in vs])
    >>> fleiss_kappa(t)  # P-bar = 7/9, P-e = (4/9)^2 + (5/9)^2 = 41/81: (63 - 41) / (81 - 41)
    0.55
    """
    counts = _count_matrix(table, column)
    n = counts.sum(axis=1)
    if not np.all(n == n[0]) or n[0] < 2:
        raise InputShapeError(
            "Fleiss' kappa needs every item rated by the same number (>= 2) of "
            "raters; use krippendorff_alpha for unbalanced designs."
        )
    raters = n[0]
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts * counts).sum(axis=1) - raters) / (raters * (raters - 1))
    p_bar, p_e = p_i.mean(), (p_j * p_j).sum()
    return float((p_bar - p_e) / (1 - p_e))


def krippendorff_alpha(table: pd.DataFrame, column: str = "choice") -> float:
    """Krippendorff's alpha for nominal data; items with a single answer are ignored."""
    counts = _count_matrix(table, column)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    # coincidence matrix o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1)
    o = np.einsum("uc,uk->ck", counts / (m - 1)[:, None], counts)
    o -= np.diag((counts / (m - 1)[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = (n * n - (n_c * n_c).sum()) / (n - 1)
    return float(1.0 - observed / expected) if expected > 0 else float("nan")


def noise_ceiling(table: pd.DataFrame, n_splits: int = 200, seed: int = 0) -> dict[str, float]:
    """Split-half reliability of per-item alignment, Spearman-Brown corrected.

    Participants are split in random halves; per-item proportions correct of the halves are
    correlated (Pearson), the correlation is corrected to full length (2r / (1 + r)), and the
    mean over splits is returned with its 2.5 and 97.5 percentiles (``low``, ``high``): how
    much the value depends on the split, a range to print as such, not a confidence interval.
    """
    table = check_table(table)
    people = table["participant"].unique()
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_splits):
        half = set(rng.permutation(people)[: len(people) // 2])
        mask = table["participant"].isin(half)
        a = table[mask].groupby("item")["correct"].mean()
        b = table[~mask].groupby("item")["correct"].mean()
        both = pd.concat([a, b], axis=1, join="inner").dropna()
        if len(both) < 3 or both.iloc[:, 0].std() == 0 or both.iloc[:, 1].std() == 0:
            continue
        r = float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1])
        values.append(2 * r / (1 + r))
    if not values:
        return {"reliability": float("nan"), "low": float("nan"), "high": float("nan"), "splits": 0}
    arr = np.asarray(values)
    return {
        "reliability": float(arr.mean()),
        "low": float(np.quantile(arr, 0.025)),
        "high": float(np.quantile(arr, 0.975)),
        "splits": len(values),
    }
