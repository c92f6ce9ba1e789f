"""Does alignment add to confidence? Cross-validated logistic models of "this model is right".

Rows are disputed input x model. Two logistic regressions predict whether the model's label is
right: one from its confidence alone (the logit of its max-softmax), one from confidence plus
the input's **standardized** alignment (the alignment and margin of the model's IRIs of this
input as z-scores within the model, their mean and SD fitted on each training fold alone,
:func:`within_z`), so that the second asks "is this model's representation of *this* input
better than usual", not "is this an aligned model". Both are fit with grouped K-fold
cross-validation (all models of an input in the same fold), so every prediction is out of
fold. Reported, each with a 95% CI:

* AUC for telling right from wrong predictions, for each model, and the gain (combined -
  confidence only);
* the accuracy of picking, per input, the model with the highest predicted chance of being
  right (ties: the mean correctness of the tied models), and its gain.

**Why the intervals refit.** A bootstrap over inputs of *fixed* out-of-fold predictions treats
the fitted models as known; but every prediction comes from a model fit on the other folds,
whose coefficients vary from sample to sample, and when alignment carries no information that
variation is most of what the gain does (with model and input heterogeneity, such an interval
called a null gain negative in 17% of simulated tables, and the audit that asked for this
found 3.8% on the positive side against 2.5%). Here every bootstrap resample of inputs reruns
the whole procedure: the within-model z-scores, the fold split (each drawn input, with all its
copies, in one fold), both fits on each training fold, and the out-of-fold AUCs and picks; the
interval is the percentile interval of those replicates.

Alternatives weighed: the corrected resampled t of Nadeau and Bengio rests on a fixed guess
of the correlation between folds (n_test / n_train) and averages per-fold AUCs, not the AUC
printed; a permutation test of the alignment
feature gives a p-value but no CI, and permuting alignment within a model breaks its
correlation with confidence, so it does not test "nothing beyond confidence"; a delete-one
jackknife that refits was tried and rejected (its bias correction is noise, and the pick
accuracy is not smooth enough for it). The refit bootstrap is the plain nonparametric
bootstrap of the statistic printed. It errs on the safe side where the gain is near zero: a
resample holds about 63% distinct inputs, so its fits vary more than the real ones (its SD
is about twice the true one under the null); under the alternative, where the gain's spread
comes mostly from which inputs were drawn, its power matched that of a normal test with the
true SD. Every resample's models are fit in one batched Newton solve
(:mod:`percalign.trust.logistic`). ``benchmarks/trust_calibration.py`` measures coverage,
false-positive rates and power.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from percalign.scoring.stats import bootstrap_ci
from percalign.trust.logistic import fit_predict

__all__ = [
    "CrossValidated",
    "compare_confidence",
    "confidence_logit",
    "cross_validate",
    "paired_difference",
    "pick_accuracy",
    "weighted_auc",
    "within_z",
]

#: fewest disputed inputs the comparison is fit on (below it: not computed)
MIN_INPUTS = 6
#: largest float count held at once while refitting (bounds memory)
CHUNK = 1_000_000


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


def _weighted_z(values: np.ndarray, levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(F, n, c) z-scores of (n, c) ``values`` within each level code of ``levels``, with the
    weighted mean and (population) SD of each of the F weightings (F, n); a level whose value
    never varies under a weighting, or has no weight, gets z = 0."""
    onehot = np.zeros((len(levels), levels.max() + 1))
    onehot[np.arange(len(levels)), levels] = 1.0
    total = weights @ onehot  # (F, L)
    safe = np.where(total > 0, total, 1.0)
    out = np.zeros((weights.shape[0], *values.shape))
    for c in range(values.shape[1]):
        v = values[:, c]
        mean = ((weights * v) @ onehot / safe)[:, levels]  # (F, n)
        var = ((weights * (v - mean) ** 2) @ onehot / safe)[:, levels]
        sd = np.sqrt(var)
        ok = sd > 1e-12 * (1.0 + np.abs(mean))
        out[:, :, c] = np.where(ok, (v - mean) / np.where(ok, sd, 1.0), 0.0)
    return out


def within_z(values: np.ndarray, within: np.ndarray, fitted_on: np.ndarray) -> np.ndarray:
    """(rows, columns) ``values`` as z-scores within each level of ``within``, with the mean
    and (population) SD of the rows ``fitted_on`` only (a level whose value never varies
    there, or that has no such row, gets z = 0).

    >>> within_z(np.array([[0.0], [2.0], [4.0]]), np.array(["m", "m", "m"]), np.array([0, 1]))
    array([[-1.],
           [ 1.],
           [ 3.]])
    """
    _, levels = np.unique(within, return_inverse=True)
    weights = np.zeros((1, len(levels)))
    weights[0, fitted_on] = 1.0
    return _weighted_z(np.asarray(values, dtype=np.float64), levels, weights)[0]


@dataclass(frozen=True)
class _Problem:
    """The rows of one comparison: features, which of them are z-scored within ``levels``,
    the outcome and each row's input (code into 0..inputs-1)."""

    x: np.ndarray  # (n, p)
    z_cols: list[int]
    levels: np.ndarray  # (n,) codes
    y: np.ndarray  # (n,) 0/1
    codes: np.ndarray  # (n,) input codes
    inputs: int

    def out_of_fold(self, counts: np.ndarray, folds: np.ndarray, k: np.ndarray) -> np.ndarray:
        """(B, n) out-of-fold chances of being right, one row per resample.

        ``counts`` (B, inputs): copies of each input; ``folds`` (B, inputs): each input's
        fold (-1: not drawn); ``k`` (B,): folds per resample. Rows of undrawn inputs: NaN.
        """
        n_boot, width = counts.shape[0], int(k.max())
        row_counts, row_folds = counts[:, self.codes], folds[:, self.codes]
        fold = np.arange(width)[None, :, None]
        in_test = row_folds[:, None, :] == fold  # (B, K, n)
        train = row_counts[:, None, :] * (~in_test & (fold < k[:, None, None]))
        train = train.reshape(n_boot * width, -1)
        x = np.broadcast_to(self.x, (len(train), *self.x.shape)).copy()
        if self.z_cols:
            x[:, :, self.z_cols] = _weighted_z(self.x[:, self.z_cols], self.levels, train)
        keep = train.sum(axis=1) > 0
        probability = np.zeros(train.shape)
        probability[keep] = fit_predict(x[keep], self.y, train[keep])[0]
        probability = probability.reshape(n_boot, width, -1)
        out = (probability * in_test).sum(axis=1)
        return np.where(row_counts > 0, out, np.nan)


def _problem(
    features: pd.DataFrame,
    right: np.ndarray,
    groups: np.ndarray,
    standardize: tuple[str, ...],
    within: np.ndarray | None,
) -> _Problem:
    y = np.asarray(right, dtype=int)
    _, codes = np.unique(groups, return_inverse=True)
    levels = (
        np.zeros(len(y), dtype=int)
        if within is None
        else np.unique(np.asarray(within), return_inverse=True)[1]
    )
    return _Problem(
        x=features.to_numpy(dtype=np.float64),
        z_cols=[int(list(features.columns).index(c)) for c in standardize],
        levels=levels,
        y=y,
        codes=codes,
        inputs=int(codes.max()) + 1,
    )


def _grouped_folds(problem: _Problem, folds: int) -> tuple[np.ndarray, int]:
    """(1, inputs) fold of each input, and K: inputs in turn, largest first, each to the fold
    with the fewest rows so far (GroupKFold's rule, without its per-call overhead)."""
    k = min(folds, problem.inputs)
    sizes = np.bincount(problem.codes, minlength=problem.inputs)
    load = np.zeros(k)
    assignment = np.empty(problem.inputs, dtype=int)
    for code in np.argsort(-sizes, kind="stable"):
        assignment[code] = int(np.argmin(load))
        load[assignment[code]] += sizes[code]
    return assignment[None, :], k


def _fit_all(problem: _Problem, names: list[str]) -> dict[str, float]:
    every = np.ones((1, len(problem.y)))
    x = problem.x.copy()
    if problem.z_cols:
        x[:, problem.z_cols] = _weighted_z(x[:, problem.z_cols], problem.levels, every)[0]
    coef = fit_predict(x, problem.y, every)[1][0]
    return dict(zip(names, coef.tolist(), strict=True))


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
    problem = _problem(features, right, groups, standardize, within)
    assignment, k = _grouped_folds(problem, folds)
    ones = np.ones((1, problem.inputs))
    probability = problem.out_of_fold(ones, assignment, np.array([k]))[0]
    return CrossValidated(probability, k, _fit_all(problem, list(features.columns)))


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


def _aucs(y: np.ndarray, probability: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B,) weighted AUC of each row of ``probability`` with the (B, rows) ``weights``, as
    :func:`weighted_auc` computes it for one weighting (rows of weight 0 do not count)."""
    scores = np.nan_to_num(probability, nan=0.0)
    n_boot, n = scores.shape
    order = np.argsort(scores, axis=1, kind="stable")
    s = np.take_along_axis(scores, order, axis=1)
    w = np.take_along_axis(np.asarray(weights, dtype=np.float64), order, axis=1)
    positive = np.asarray(y, dtype=np.float64)[order]
    # rows with equal scores form one group (ties count one half)
    group = np.concatenate([np.zeros((n_boot, 1)), np.diff(s, axis=1) != 0], axis=1)
    ids = (np.cumsum(group, axis=1) + n * np.arange(n_boot)[:, None]).astype(int).ravel()
    pos = np.bincount(ids, (w * positive).ravel(), n_boot * n).reshape(n_boot, n)
    neg = np.bincount(ids, (w * (1 - positive)).ravel(), n_boot * n).reshape(n_boot, n)
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def pick_accuracy(
    probability: np.ndarray, y: np.ndarray, slots: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """(B,) accuracy of picking, per input, the row with the highest ``probability``.

    Args:
        probability: (B, rows) predicted chance of being right.
        y: (rows,) 0/1.
        slots: (inputs, models) row index of each input's models (-1: none).
        weights: (B, inputs) weight of each input (bootstrap copies).

    Ties score the mean correctness of the tied rows.
    """
    present = slots >= 0
    p = np.where(present, probability[:, np.maximum(slots, 0)], -np.inf)  # (B, G, M)
    tied = (p == p.max(axis=2, keepdims=True)) & present
    right = np.where(present, y[np.maximum(slots, 0)], 0.0)
    n_tied = tied.sum(axis=2)
    share = (tied * right).sum(axis=2) / np.maximum(n_tied, 1)
    # an undrawn input (weight 0, no predictions) has no tied rows and counts for nothing
    return (weights * share).sum(axis=1) / weights.sum(axis=1)


def _slots(codes: np.ndarray, inputs: int) -> np.ndarray:
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=inputs)
    slots = -np.ones((inputs, int(sizes.max())), dtype=int)
    position = np.arange(len(codes)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    slots[codes[order], position] = order
    return slots


def _resamples(
    rng: np.random.Generator, n_boot: int, inputs: int, folds: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of each input (B, inputs), each drawn input's fold (-1: undrawn), and K."""
    draws = rng.integers(0, inputs, size=(n_boot, inputs))
    counts = np.zeros((n_boot, inputs))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    drawn = counts > 0
    k = np.minimum(folds, drawn.sum(axis=1))
    keys = np.where(drawn, rng.random((n_boot, inputs)), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    return counts, np.where(drawn, rank % k[:, None], -1), k


def _per_input(values: np.ndarray, codes: np.ndarray, inputs: int) -> np.ndarray:
    """(inputs,) the value of each input code from (rows,) ``values`` equal on its rows."""
    out = np.empty(inputs)
    out[codes] = np.asarray(values, dtype=np.float64)
    return out


def _percentile(point: float, replicates: np.ndarray) -> tuple[float, float, float]:
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0 or point != point:
        return point, float("nan"), float("nan")
    lo, hi = np.quantile(finite, [0.025, 0.975])
    return point, float(lo), float(hi)


def compare_confidence(
    features: pd.DataFrame,
    right: np.ndarray,
    groups: np.ndarray,
    within: np.ndarray,
    folds: int = 5,
    n_boot: int = 2000,
    seed: int = 0,
    *,
    standardize: tuple[str, ...] = ("alignment", "margin"),
    paired: Mapping[str, np.ndarray] | None = None,
) -> tuple[CrossValidated, CrossValidated, dict[str, Any]]:
    """Confidence alone (``features``' first column) against every column of ``features``.

    Args:
        features: (rows, p) the confidence logit first, then the alignment features.
        right: (rows,) 0/1: the model is right on the input.
        groups: (rows,) the input of each row (the unit resampled and kept in one fold).
        within: (rows,) the model of each row (z-scores are fitted within it).
        folds: K of the grouped cross-validation.
        n_boot, seed: resamples of inputs; each one reruns the whole cross-validation.
        standardize: the columns of ``features`` entered as within-model z-scores (those
            present).
        paired: per name, (rows,) the outcome of another method on each row's input (equal
            on an input's rows), e.g. a baseline: the combined model's pick accuracy minus
            its mean is reported from the same refit replicates.

    Returns:
        ``(alone, both, stats)``: the out-of-fold predictions of each model, and ``stats``
        with ``auc_{confidence,combined,gain}`` and ``accuracy_{confidence,combined,gain}``
        (pick accuracy), each with ``_lo`` and ``_hi`` (95% percentile CI of the refit
        bootstrap), ``folds``, ``rows`` and ``coef_*`` (the combined model on every row);
        for each ``paired`` name, ``vs NAME``, ``vs NAME lo`` and ``vs NAME hi``.
    """
    zs = tuple(c for c in standardize if c in features.columns)
    models = [
        _problem(features.iloc[:, :1], right, groups, (), within),
        _problem(features, right, groups, zs, within),
    ]
    y, codes, inputs = models[0].y, models[0].codes, models[0].inputs
    assignment, k = _grouped_folds(models[0], folds)
    ones = np.ones((1, inputs))
    point = [m.out_of_fold(ones, assignment, np.array([k])) for m in models]
    slots = _slots(codes, inputs)
    both_classes = 0 < y.sum() < len(y)
    values = {
        "auc": [float(roc_auc_score(y, p[0])) if both_classes else float("nan") for p in point],
        "accuracy": [float(pick_accuracy(p, y, slots, ones)[0]) for p in point],
    }
    rng = np.random.default_rng(seed)
    per_resample = max(1, CHUNK // (folds * len(y) * (features.shape[1] + 1)))
    reps: dict[str, list[list[np.ndarray]]] = {"auc": [[], []], "accuracy": [[], []]}
    others = {name: _per_input(v, codes, inputs) for name, v in (paired or {}).items()}
    other_reps: dict[str, list[np.ndarray]] = {name: [] for name in others}
    for start in range(0, n_boot, per_resample):
        counts, fold_of, kk = _resamples(rng, min(per_resample, n_boot - start), inputs, folds)
        for j, m in enumerate(models):
            probability = m.out_of_fold(counts, fold_of, kk)
            reps["auc"][j].append(_aucs(y, probability, counts[:, codes]))
            reps["accuracy"][j].append(pick_accuracy(probability, y, slots, counts))
        for name, other in others.items():
            mean = counts @ other / counts.sum(axis=1)
            other_reps[name].append(reps["accuracy"][1][-1] - mean)
    stats: dict[str, Any] = {"rows": len(y), "folds": k}
    for measure, (alone, both) in reps.items():
        a, b = np.concatenate(alone), np.concatenate(both)
        v = values[measure]
        for name, value, column in (
            ("confidence", v[0], a),
            ("combined", v[1], b),
            ("gain", v[1] - v[0], b - a),
        ):
            key = f"{measure}_{name}"
            stats[key], stats[f"{key}_lo"], stats[f"{key}_hi"] = _percentile(value, column)
    for name, other in others.items():
        diff = _percentile(values["accuracy"][1] - other.mean(), np.concatenate(other_reps[name]))
        stats[f"vs {name}"], stats[f"vs {name} lo"], stats[f"vs {name} hi"] = diff
    fitted = [
        CrossValidated(p[0], k, _fit_all(m, list(features.columns)[: m.x.shape[1]]))
        for p, m in zip(point, models, strict=True)
    ]
    for name, value in fitted[1].coefficients.items():
        stats[f"coef_{name}"] = value
    return fitted[0], fitted[1], stats


def paired_difference(
    a: np.ndarray, b: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over inputs with its percentile bootstrap CI."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    lo, hi = bootstrap_ci(diff, n_boot, seed)
    return (float(diff.mean()) if len(diff) else float("nan"), lo, hi)
