"""Can an automated judge stand in for people? Agreement of judge decisions with human answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["judge_agreement", "ranking_agreement"]


def judge_agreement(humans: pd.DataFrame, judge: pd.DataFrame) -> dict[str, float]:
    """Per-trial agreement of one judge with people on the same 2AFC items.

    Args:
        humans: answers with ``item`` and ``correct`` (many per item).
        judge: the judge's decision per ``item`` as ``correct`` (one per item).

    Returns:
        ``majority``: share of items where the judge agrees with the human majority (ties
        dropped); ``expected``: the BAPPS-style 2AFC score, the mean over items of the share
        of people who answered as the judge did; ``ceiling``: the same score for a random
        person (p^2 + (1-p)^2 averaged over items) and ``normalized`` = expected / ceiling,
        reported beside the raw value, never instead of it; ``kappa``: Cohen's kappa between
        the judge and the human majority; ``items``: items compared.
    """
    share = humans.groupby("item")["correct"].mean()
    decision = judge.set_index("item")["correct"].astype(int)
    both = pd.concat([share.rename("share"), decision.rename("judge")], axis=1, join="inner")
    expected = np.where(both["judge"] == 1, both["share"], 1 - both["share"]).mean()
    clear = both[both["share"] != 0.5]
    majority = (clear["share"] > 0.5).astype(int)
    agree = float((majority == clear["judge"]).mean()) if len(clear) else float("nan")
    # two random people agree with probability p^2 + (1-p)^2 (the BAPPS human score)
    ceiling = float((both["share"] ** 2 + (1 - both["share"]) ** 2).mean())
    return {
        "majority": agree,
        "expected": float(expected),
        "ceiling": ceiling,
        "normalized": float(expected) / ceiling if ceiling else float("nan"),
        "kappa": _cohen_kappa(majority.to_numpy(), clear["judge"].to_numpy()),
        "items": len(both),
    }


def _cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0:
        return float("nan")
    labels = np.union1d(a, b)
    po = float(np.mean(a == b))
    pe = float(sum(np.mean(a == k) * np.mean(b == k) for k in labels))
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")


def ranking_agreement(
    human_scores: pd.Series, judge_scores: pd.Series, n_boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Kendall's tau between the human and the judge ranking of models, with a bootstrap CI
    over models (both score series are indexed by model)."""
    both = pd.concat([human_scores, judge_scores], axis=1, join="inner").dropna()
    x, y = both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()
    tau = float(stats.kendalltau(x, y).statistic)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(x[idx])) > 1 and len(np.unique(y[idx])) > 1:
            boot.append(stats.kendalltau(x[idx], y[idx]).statistic)
    lo, hi = np.quantile(boot, [0.025, 0.975]) if boot else (float("nan"),) * 2
    return {"tau": tau, "ci_low": float(lo), "ci_high": float(hi), "models": len(x)}
