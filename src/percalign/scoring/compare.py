"""Model comparisons: difference in alignment with a paired bootstrap CI, a permutation test,
and Holm's correction over all pairs."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

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


def _participant_means(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per participant and level of ``column``: correct answers and answer count."""
    g = table.groupby(["participant", column], observed=True)["correct"]
    return pd.DataFrame({"hits": g.sum(), "n": g.count()}).reset_index()


def compare(
    table: pd.DataFrame,
    column: str = "model",
    *,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every pair of levels of ``column`` (models): difference in alignment, 95% CI, p-values.

    The bootstrap resamples participants (pairing holds when participants judged both models);
    the permutation test swaps the two labels within each participant's answers. p-values are
    two-sided; ``p_holm`` corrects them over all pairs.
    """
    table = check_table(table, [column])
    levels = sorted(table[column].unique())
    rng = np.random.default_rng(seed)
    rows = []
    for a, b in combinations(levels, 2):
        sub = table[table[column].isin([a, b])]
        per = _participant_means(sub, column)
        wide = per.pivot(index="participant", columns=column, values=["hits", "n"]).fillna(0)
        ha, hb = wide[("hits", a)].to_numpy(), wide[("hits", b)].to_numpy()
        na, nb = wide[("n", a)].to_numpy(), wide[("n", b)].to_numpy()
        diff = ha.sum() / na.sum() - hb.sum() / nb.sum()
        n_p = len(ha)
        w = rng.multinomial(n_p, np.full(n_p, 1.0 / n_p), size=n_boot)
        boot = (w @ ha) / np.maximum(w @ na, 1) - (w @ hb) / np.maximum(w @ nb, 1)
        # permutation: per participant, the labels of all their answers swap with prob 1/2
        flips = rng.random((n_perm, n_p)) < 0.5
        pa = np.where(flips, hb, ha).sum(1) / np.where(flips, nb, na).sum(1)
        pb = np.where(flips, ha, hb).sum(1) / np.where(flips, na, nb).sum(1)
        null = pa - pb
        p_perm = (1 + np.sum(np.abs(null) >= abs(diff) - 1e-12)) / (n_perm + 1)
        rows.append(
            {
                "a": a,
                "b": b,
                "alignment_a": ha.sum() / na.sum(),
                "alignment_b": hb.sum() / nb.sum(),
                "difference": diff,
                "ci_low": float(np.quantile(boot, 0.025)),
                "ci_high": float(np.quantile(boot, 0.975)),
                "p_perm": float(p_perm),
            }
        )
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = holm(out["p_perm"].to_numpy())
    return out
