"""Does alignment add to confidence? Cross-validated logistic models of "this model is right".

Rows are disputed input x model. Two scikit-learn logistic regressions predict whether the
model's label is right: one from its confidence alone (the logit of its max-softmax), one from
confidence plus the input's **standardized** alignment (the alignment and margin of the
model's IRIs of this input as z-scores within the model, their mean and SD fitted on each
training fold alone, :func:`within_z`), so that the second asks "is this model's
representation of *this* input better than usual", not "is this an aligned model".

Both are fit with grouped K-fold cross-validation (all models of an input in the same fold),
so every prediction is out of fold. On those predictions we report:

* AUC for telling right from wrong predictions, with a percentile-bootstrap CI over inputs,
  and the paired AUC difference (combined - confidence only) with its CI;
* the accuracy of picking, per input, the model with the highest predicted chance of being
  right (ties: the mean correctness of the tied models), with CIs, and their paired difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from percalign.scoring.stats import bootstrap_ci

__all__ = [
    "CrossValidated",
    "auc_with_ci",
    "confidence_logit",
    "cross_validate",
    "paired_difference",
    "weighted_auc",
    "within_z",
]

#: fewest disputed inputs the comparison is fit on (below it: not computed)
MIN_INPUTS = 6


def confidence_logit(confidence: np.ndarray) -> np.ndarray:
    """log(c / (1 - c)) of max-softmax values, clipped away from 0 and 1."""
    c = np.clip(np.asarray(confidence, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(c / (1 - c))


@dataclass(frozen=True)
class CrossValidated:
    """Out-of-fold predicted chance of being right for each row, and the fit on all rows."""

    probability: np.ndarray  # (rows,)
    folds: int
    coefficients: dict[str, float]  # of the standardized features, fit on every row


def within_z(values: np.ndarray, within: np.ndarray, fitted_on: np.ndarray) -> np.ndarray:
    """(rows, columns) ``values`` as z-scores within each level of ``within``, with the mean
    and (population) SD of the rows ``fitted_on`` only (a level whose value never varies
    there, or that has no such row, gets z = 0).

    >>> within_z(np.array([[0.0], [2.0], [4.0]]), np.array(["m", "m", "m"]), np.array([0, 1]))
    array([[-1.],
           [ 1.],
           [ 3.]])
    """
    out = np.zeros_like(values, dtype=np.float64)
    for level in np.unique(within):
        rows = within == level
        fit = values[np.intersect1d(np.flatnonzero(rows), fitted_on)]
        if len(fit) == 0:
            continue
        mean, sd = fit.mean(axis=0), fit.std(axis=0)
        ok = sd > 0
        out[np.ix_(rows, ok)] = (values[np.ix_(rows, ok)] - mean[ok]) / sd[ok]
    return out


def cross_validate(
    features: pd.DataFrame,
    right: np.ndarray,
    groups: np.ndarray,
    folds: int = 5,
    *,
    standardize: tuple[str, ...] = (),
    within: np.ndarray | None = None,
) -> CrossValidated:
    """Grouped K-fold logistic regression of ``right`` (0/1) on ``features``.

    The ``standardize`` columns enter as z-scores within each level of ``within`` (e.g. the
    model), their mean and SD fitted on each training fold alone, so that no test row shapes
    its own features. A training fold in which every row is right (or wrong) predicts that
    constant.
    """
    x = features.to_numpy(dtype=np.float64)
    y = np.asarray(right, dtype=int)
    n_groups = len(np.unique(groups))
    k = min(folds, n_groups)
    out = np.empty(len(y))
    z_cols = [int(list(features.columns).index(c)) for c in standardize]
    levels = np.zeros(len(y)) if within is None else np.asarray(within)

    def design(train: np.ndarray) -> np.ndarray:
        if not z_cols:
            return x
        fitted = x.copy()
        fitted[:, z_cols] = within_z(x[:, z_cols], levels, train)
        return fitted

    def fit(rows: np.ndarray, xs: np.ndarray) -> Pipeline | float:
        if len(np.unique(y[rows])) < 2:
            return float(y[rows].mean())
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
            xs[rows], y[rows]
        )

    for train, test in GroupKFold(n_splits=k).split(x, y, groups):
        xs = design(train)
        model = fit(train, xs)
        out[test] = model if isinstance(model, float) else model.predict_proba(xs[test])[:, 1]
    every = np.arange(len(y))
    whole = fit(every, design(every))
    coefficients = (
        {c: 0.0 for c in features.columns}
        if isinstance(whole, float)
        else dict(zip(features.columns, whole[-1].coef_[0].tolist(), strict=True))
    )
    return CrossValidated(out, k, coefficients)


def weighted_auc(right: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of ``score`` for ``right`` (0/1) with row ``weights`` (B, rows): one per row of it.

    A row of weight k counts as k copies (a bootstrap resample), ties count one half, as in
    :func:`sklearn.metrics.roc_auc_score` on the repeated rows. NaN where a weighting has no
    right or no wrong row.
    """
    y = np.asarray(right, dtype=np.float64)
    _, group = np.unique(np.asarray(score, dtype=np.float64), return_inverse=True)
    onehot = np.zeros((len(y), group.max() + 1))
    onehot[np.arange(len(y)), group] = 1.0
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    pos = (w * y) @ onehot  # (B, distinct scores), ascending
    neg = (w * (1 - y)) @ onehot
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def auc_with_ci(
    right: np.ndarray,
    scores: list[np.ndarray],
    groups: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[tuple[float, float, float]]:
    """AUC of each score array, with a percentile bootstrap CI resampling groups (inputs).

    With two score arrays a third entry is added: the paired difference (second - first),
    from the same resamples. Resamples in which every row is right (or wrong) are left out.
    """
    y = np.asarray(right, dtype=int)
    _, codes = np.unique(groups, return_inverse=True)
    n_groups = codes.max() + 1
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))
    counts = np.zeros((n_boot, n_groups))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    weights = counts[:, codes]
    both = 0 < y.sum() < len(y)
    point = [float(roc_auc_score(y, s)) if both else float("nan") for s in scores]
    boot = [weighted_auc(y, s, weights) for s in scores]
    if len(scores) == 2:
        point.append(point[1] - point[0])
        boot.append(boot[1] - boot[0])
    out = []
    for value, column in zip(point, boot, strict=True):
        column = column[np.isfinite(column)]
        if len(column) == 0:
            out.append((value, float("nan"), float("nan")))
        else:
            lo, hi = np.quantile(column, [0.025, 0.975])
            out.append((value, float(lo), float(hi)))
    return out


def paired_difference(
    a: np.ndarray, b: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over inputs with its percentile bootstrap CI."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    lo, hi = bootstrap_ci(diff, n_boot, seed)
    return (float(diff.mean()) if len(diff) else float("nan"), lo, hi)
