"""Which model to trust when models disagree: the rules, their baselines, and selection.

Pure pandas/numpy/scikit-learn on two long tables:

* predictions: one row per input x model: ``input_id``, ``label`` (the truth), ``model``,
  ``predicted``, ``confidence`` (max softmax);
* scores: one row per input x model x source (:mod:`percalign.trust.sources`).

Rules, each per source (:data:`RULES`):

* ``absolute``: trust the model whose IRIs of the input are most aligned (ties: the highest
  margin);
* ``standardized``: the same on each model's alignment as a z-score over the inputs the
  source scored (:func:`standardize`): "this model represents this input better than it
  usually does", not "this model is aligned";
* ``confidence+alignment``: trust the model that a cross-validated logistic model of
  confidence and standardized alignment finds most likely right
  (:mod:`percalign.trust.confidence`).

Ties are never broken by a hidden coin: a method that cannot choose between k models scores
the mean correctness of those k (its expected accuracy under a random tie-break).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from percalign._checks import check_int
from percalign.errors import ConfigError
from percalign.scoring.stats import bootstrap_ci, wilson
from percalign.trust.confidence import (
    MIN_INPUTS,
    compare_confidence,
    confidence_logit,
    paired_difference,
)
from percalign.trust.sources import SCORE_COLUMNS, require, source_label

__all__ = [
    "BASELINES",
    "PREDICTION_COLUMNS",
    "RULES",
    "disagreements",
    "evaluate",
    "select_uncertain",
    "standardize",
    "verdict",
]

#: largest float count held at once while refitting the standardized rule (bounds memory)
REFIT_CHUNK = 200_000
PREDICTION_COLUMNS = ("input_id", "label", "model", "predicted", "confidence")
RULES = {
    "absolute": "trust the model whose IRIs of the input are most aligned",
    "standardized": "trust the model whose IRIs of the input are most aligned relative to "
    "its own alignment over the inputs (z-score)",
    "confidence+alignment": "trust the model that a cross-validated logistic model of "
    "confidence and standardized alignment finds most likely right",
}
BASELINES = {
    "random": "a model chosen at random (expected accuracy)",
    "max-softmax": "the most confident model (highest softmax)",
    "best-on-average": "always the model with the best accuracy over all inputs",
    "majority": "the label most models predict (ties: expected accuracy)",
    "oracle": "right when any model is right (upper bound)",
}


def disagreements(predictions: pd.DataFrame) -> list[str]:
    """Inputs on which the models do not all predict the same label, in first-seen order.

    >>> p = pd.DataFrame({"input_id": ["a", "a", "b", "b"], "label": [1, 1, 2, 2],
    ...                   "model": ["m", "n", "m", "n"], "predicted": [1, 7, 2, 2],
    ...                   "confidence": [0.9, 0.8, 0.9, 0.9]})
    >>> disagreements(p)
    ['a']
    """
    require(predictions, PREDICTION_COLUMNS, "predictions")
    distinct = predictions.groupby("input_id", sort=False)["predicted"].nunique()
    return [str(i) for i in distinct[distinct > 1].index]


def standardize(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with ``z_alignment`` and ``z_margin``: z-scores within each source x model.

    The mean and (population) standard deviation are over the inputs in ``scores``; a model
    whose value never varies gets z = 0 everywhere.

    >>> s = pd.DataFrame({"source": "j", "model": "m", "alignment": [0.0, 1.0],
    ...                   "margin": [0.1, 0.1]})
    >>> standardize(s)[["z_alignment", "z_margin"]].values.tolist()
    [[-1.0, 0.0], [1.0, 0.0]]
    """
    out = scores.copy()
    groups = out.groupby(["source", "model"], sort=False)
    for column in ("alignment", "margin"):
        mean = groups[column].transform("mean")
        sd = groups[column].transform("std", ddof=0)
        out[f"z_{column}"] = ((out[column] - mean) / sd.where(sd > 0)).where(sd > 0, 0.0)
    return out


def _pick(scores: pd.DataFrame, first: str, second: str) -> list[str]:
    """Models with the highest ``first``, then (among ties) the highest ``second``."""
    best = scores[scores[first] == scores[first].max()]
    if best[second].notna().all():
        best = best[best[second] == best[second].max()]
    return best["model"].tolist()


def _interval(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, str]:
    if np.isin(values, (0.0, 1.0)).all():
        lo, hi = wilson(int(values.sum()), len(values))
        return lo, hi, "wilson"
    lo, hi = bootstrap_ci(values, n_boot, seed)
    return lo, hi, "bootstrap"


def _tied(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(inputs, models) True for the models with the highest ``first``, then (among ties,
    where none of them lacks it) the highest ``second`` (as :func:`_pick`, per row)."""
    best = first == np.nanmax(first, axis=1, keepdims=True)
    known = ~(best & np.isnan(second)).any(axis=1, keepdims=True)
    among = np.where(best, second, -np.inf)
    second_best = best & (among == np.max(among, axis=1, keepdims=True))
    return np.where(known, second_best, best)


def _mean_where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row means of ``values`` over ``mask`` (a tie scores the mean of the tied models)."""
    with np.errstate(invalid="ignore"):
        return (mask * values).sum(axis=1) / mask.sum(axis=1)


def _names(mask: np.ndarray, models: list[str]) -> np.ndarray:
    return np.array(["|".join(m for m, t in zip(models, row, strict=True) if t) for row in mask])


def _baselines(
    wide: pd.DataFrame, right: np.ndarray, models: list[str], best_model: str
) -> dict[str, np.ndarray]:
    """Each baseline's outcome per input of ``wide`` (inputs x (column, model))."""
    conf = wide["confidence"][models].to_numpy(np.float64)
    predicted = wide["predicted"][models].to_numpy()
    votes = (predicted[:, :, None] == predicted[:, None, :]).sum(axis=2)
    top = votes == votes.max(axis=1, keepdims=True)
    # the majority's expected accuracy: the mean, over the most voted labels, of "is the
    # truth"; a top label with v votes appears v times among the top models
    majority = (top * right / votes).sum(axis=1) / (top / votes).sum(axis=1)
    return {
        "random": right.mean(axis=1),
        "max-softmax": _mean_where(conf == conf.max(axis=1, keepdims=True), right),
        "best-on-average": right[:, models.index(best_model)],
        "majority": majority,
        "oracle": right.max(axis=1),
    }


def _complete(scores: pd.DataFrame, models: list[str], inputs: Sequence[str]) -> pd.DataFrame:
    """Rows of (input, source) pairs that score every model, on ``inputs`` only."""
    s = scores[scores["input_id"].isin(set(inputs)) & scores["model"].isin(set(models))]
    counts = s.groupby(["input_id", "source"], sort=False)["model"].transform("nunique")
    return s[counts == len(models)]


def _combined(
    pred: pd.DataFrame,
    scored: pd.DataFrame,
    baselines: pd.DataFrame,
    folds: int,
    n_boot: int,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, tuple[float, float, float]]] | None:
    """Out-of-fold chances of being right (confidence only; with alignment), the comparison's
    stats, and the rule's accuracy and differences to each of ``baselines`` (columns, one row
    per input) from the same refit replicates."""
    rows = scored.merge(
        pred[["input_id", "model", "confidence", "right"]], on=["input_id", "model"]
    )
    if rows["input_id"].nunique() < MIN_INPUTS:
        return None
    groups = rows["input_id"].to_numpy()
    right = rows["right"].to_numpy(dtype=int)
    base = pd.DataFrame({"confidence": confidence_logit(rows["confidence"].to_numpy())})
    # raw alignment and margin: cross_validate makes them z-scores within each model on
    # the training folds alone (z-scores over every row would let test rows shape them)
    features = base.assign(alignment=rows["alignment"].to_numpy(dtype=np.float64))
    if rows["margin"].notna().all():
        features["margin"] = rows["margin"].to_numpy(dtype=np.float64)
    paired = {b: baselines.loc[groups, b].to_numpy(np.float64) for b in baselines.columns}
    alone, both, stats = compare_confidence(
        features, right, groups, rows["model"].to_numpy(), folds, n_boot, seed, paired=paired
    )
    rows = rows.assign(p_confidence=alone.probability, p_combined=both.probability)
    key = "accuracy_combined"
    refit = {"accuracy": (stats[key], stats[f"{key}_lo"], stats[f"{key}_hi"])}
    for b in paired:
        refit[f"vs {b}"] = (stats.pop(f"vs {b}"), stats.pop(f"vs {b} lo"), stats.pop(f"vs {b} hi"))
    return rows, stats, refit


def _column_z(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, inputs, models) z-scores of each model's column of (inputs, models) ``values``,
    with the mean and (population) SD weighted by each row of ``counts`` (B, inputs), missing
    values left out (and left missing); a column that never varies gets z = 0."""
    finite = np.isfinite(values)
    v = np.where(finite, values, 0.0)
    w = counts[:, :, None] * finite
    total = w.sum(axis=1, keepdims=True)
    safe = np.where(total > 0, total, 1.0)
    mean = (w * v).sum(axis=1, keepdims=True) / safe
    sd = np.sqrt((w * (v - mean) ** 2).sum(axis=1, keepdims=True) / safe)
    ok = sd > 1e-12 * (1.0 + np.abs(mean))
    z = np.where(ok, (v - mean) / np.where(ok, sd, 1.0), 0.0)
    return np.where(finite, z, np.nan)


def _restandardized(
    alignment: np.ndarray,
    margin: np.ndarray,
    right: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    n_boot: int,
    seed: int,
) -> dict[str, tuple[float, float, float]]:
    """The standardized rule's accuracy and its difference to each baseline, with 95% CIs
    from a bootstrap of inputs that refits the z-scores and repicks on every resample.

    The rule's z-scores are fitted on the evaluated inputs, so its picks depend on all of
    them; a bootstrap of fixed picks misses that variation. Each resample refits every
    model's mean and SD on the inputs drawn, with their copies, and repicks every input; the
    interval is the percentile interval of those replicates. What it estimates is the
    accuracy of the rule as applied: z-scores fitted on as many inputs as were evaluated.
    That is below the accuracy z-scores from unlimited inputs would give (by about 3 points
    at 100 inputs of 4 heterogeneous models with coarse alignment, in simulation), a loss
    no bootstrap of the sample sees.

    Args:
        alignment, margin, right: (inputs, models) raw alignment, margin and correctness.
        baselines: per name, (inputs,) each baseline's outcome.
    """
    inputs, models = right.shape
    ones = np.ones((1, inputs))

    def outcomes(counts: np.ndarray) -> np.ndarray:
        tied = _tied(
            _column_z(alignment, counts).reshape(-1, models),
            _column_z(margin, counts).reshape(-1, models),
        )
        wide = np.broadcast_to(right, (len(counts), inputs, models)).reshape(-1, models)
        return _mean_where(tied, wide).reshape(len(counts), inputs)

    point = {"accuracy": float(outcomes(ones)[0].mean())}
    point.update({f"vs {b}": point["accuracy"] - float(v.mean()) for b, v in baselines.items()})
    rng = np.random.default_rng(seed)
    reps: dict[str, list[np.ndarray]] = {name: [] for name in point}
    per_resample = max(1, REFIT_CHUNK // (inputs * models))
    for start in range(0, n_boot, per_resample):
        b = min(per_resample, n_boot - start)
        draws = rng.integers(0, inputs, size=(b, inputs))
        counts = np.zeros((b, inputs))
        np.add.at(counts, (np.arange(b)[:, None], draws), 1.0)
        accuracy = (counts * outcomes(counts)).sum(axis=1) / inputs
        reps["accuracy"].append(accuracy)
        for name, values in baselines.items():
            reps[f"vs {name}"].append(accuracy - counts @ values / inputs)
    out = {}
    for name, value in point.items():
        lo, hi = np.quantile(np.concatenate(reps[name]), [0.025, 0.975])
        out[name] = (value, float(lo), float(hi))
    return out


def evaluate(
    predictions: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    inputs: Sequence[str] | None = None,
    reference_accuracy: Mapping[str, float] | None = None,
    folds: int = 5,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every rule, per source, against the baselines on the disputed inputs.

    Args:
        predictions: every evaluated input x model (agreements included: they define the
            best-on-average model unless ``reference_accuracy`` is given).
        scores: alignment per input x model x source (:mod:`percalign.trust.sources`). A
            source is evaluated on the disputed inputs where it scored every model.
        inputs: the disputed inputs to evaluate (default: all of them), e.g. a sample.
        reference_accuracy: accuracy per model that names the best-on-average model
            (default: accuracy over all rows of ``predictions``).
        folds: cross-validation folds of the ``confidence+alignment`` rule.
        n_boot, seed: bootstrap of CIs that are not binomial and of the paired differences.

    Returns:
        ``(per_input, summary, confidence)``. per_input: one row per evaluated input with
        the label, each model's prediction and confidence, each source's alignment per
        model, each rule's pick and outcome. summary: one row per method (``RULE:SOURCE``
        and each baseline) with ``inputs``, ``accuracy`` and its 95% CI, and for the rules
        the paired difference to each baseline with its bootstrap CI. confidence: per source,
        AUC and pick accuracy of the confidence-only and the confidence+alignment models.
    """
    require(predictions, PREDICTION_COLUMNS, "predictions")
    require(scores, SCORE_COLUMNS, "scores")
    check_int("evaluate", "n_boot", n_boot, low=100)
    check_int("evaluate", "folds", folds, low=2)
    pred = predictions.copy()
    pred["input_id"] = pred["input_id"].astype(str)
    pred["right"] = pred["predicted"] == pred["label"]
    models = list(dict.fromkeys(pred["model"]))
    if len(models) < 2:
        raise ConfigError(f"Trust needs two or more models; got {models}.")
    reference: Mapping[Any, float] = (
        pred.groupby("model")["right"].mean().to_dict()
        if reference_accuracy is None
        else reference_accuracy
    )
    best_model = max(models, key=lambda m: (reference[m], -models.index(m)))
    disputed = disagreements(pred)
    if inputs is not None:
        wanted = {str(i) for i in inputs}
        disputed = [i for i in disputed if i in wanted]
    if not disputed:
        raise ConfigError(
            "The models agree on every input, so there is nothing to decide; use more inputs "
            "(--n-images) or models that differ more."
        )
    scored = standardize(_complete(scores, models, disputed))
    sources = list(dict.fromkeys(scored["source"]))
    wide = pred.pivot(index="input_id", columns="model").reindex(index=disputed)
    right = wide["right"][models].to_numpy(dtype=np.float64)
    columns: dict[str, Any] = {"input_id": disputed, "label": wide["label"][models[0]].tolist()}
    for m in models:
        columns[f"pred:{m}"] = wide["predicted"][m].tolist()
        columns[f"conf:{m}"] = wide["confidence"][m].to_numpy(dtype=np.float64).round(4)
    columns.update(_baselines(wide, right, models, best_model))
    per_input = pd.DataFrame(columns)
    position = {input_id: i for i, input_id in enumerate(disputed)}
    baselines = per_input.set_index("input_id")[list(BASELINES)]
    refit: dict[str, dict[str, tuple[float, float, float]]] = {}
    confidence_rows = []
    for source in sources:
        mine = scored[scored["source"] == source]
        table = mine.pivot(index="input_id", columns="model")
        at = np.array([position[str(i)] for i in table.index])
        own = right[at]
        added: dict[str, np.ndarray] = {}
        for m in models:
            added[f"align:{source}:{m}"] = table["alignment"][m].to_numpy(np.float64).round(4)
        for rule, (first, second) in {
            "absolute": ("alignment", "margin"),
            "standardized": ("z_alignment", "z_margin"),
        }.items():
            tied = _tied(
                table[first][models].to_numpy(np.float64),
                table[second][models].to_numpy(np.float64),
            )
            added[f"pick:{rule}:{source}"] = _names(tied, models)
            added[f"{rule}:{source}"] = _mean_where(tied, own)
        refit[f"standardized:{source}"] = _restandardized(
            table["alignment"][models].to_numpy(np.float64),
            table["margin"][models].to_numpy(np.float64),
            own,
            {b: baselines[b].to_numpy(np.float64)[at] for b in BASELINES},
            n_boot,
            seed,
        )
        fitted = _combined(pred, mine, baselines, folds, n_boot, seed)
        if fitted is not None:
            probabilities, stats, refit[f"confidence+alignment:{source}"] = fitted
            wide_p = probabilities.pivot(index="input_id", columns="model")["p_combined"]
            p = wide_p.reindex(index=table.index)[models].to_numpy(np.float64)
            tied = _tied(p, np.full_like(p, np.nan))
            added["pick:confidence+alignment:" + source] = _names(tied, models)
            added["confidence+alignment:" + source] = _mean_where(tied, own)
            confidence_rows.append(
                {
                    "source": source,
                    "source_label": source_label(source),
                    "inputs": len(at),
                    **stats,
                }
            )
        for name, values in added.items():
            text = values.dtype.kind in "OUS"
            column = np.full(len(disputed), np.nan, dtype=object if text else np.float64)
            column[at] = values
            per_input[name] = column
    summary = _summary(per_input, sources, best_model, refit, n_boot, seed)
    return per_input, summary, pd.DataFrame(confidence_rows)


def _summary(
    per_input: pd.DataFrame,
    sources: list[str],
    best_model: str,
    refit: Mapping[str, Mapping[str, tuple[float, float, float]]],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """One row per method. A rule whose picks are fitted on the evaluated inputs (its
    ``refit`` entry) takes its accuracy and differences, with their CIs, from a bootstrap
    that refits it on every resample; the others bootstrap their fixed outcomes."""
    methods = [(rule, s) for s in sources for rule in RULES]
    methods = [(r, s) for r, s in methods if f"{r}:{s}" in per_input]
    summary = []
    for rule, source in [*methods, *((b, "") for b in BASELINES)]:
        method = f"{rule}:{source}" if source else rule
        kept = per_input[per_input[method].notna()]
        values = kept[method].to_numpy(dtype=np.float64)
        fits = refit.get(method)
        if fits is None:
            lo, hi, how = _interval(values, n_boot, seed)
        else:
            _, lo, hi = fits["accuracy"]
            how = "refit bootstrap"
        detail = RULES.get(rule) or BASELINES[rule]
        if rule == "best-on-average":
            detail = f"model {best_model}"
        entry: dict[str, object] = {
            "method": method,
            "rule": rule,
            "source": source,
            "source_label": source_label(source) if source else "",
            "inputs": len(values),
            "accuracy": float(values.mean()) if len(values) else np.nan,
            "lo": lo,
            "hi": hi,
            "ci": how,
            "detail": detail,
        }
        if source:
            for base in BASELINES:
                diff, d_lo, d_hi = (
                    paired_difference(values, kept[base].to_numpy(dtype=np.float64), n_boot, seed)
                    if fits is None
                    else fits[f"vs {base}"]
                )
                entry[f"vs {base}"], entry[f"vs {base} lo"], entry[f"vs {base} hi"] = (
                    diff,
                    d_lo,
                    d_hi,
                )
        summary.append(entry)
    return pd.DataFrame(summary)


def inputs_needed(accuracy: float, half_width: float = 0.10) -> int:
    """Inputs for a 95% (normal-approximation) CI half-width of ``half_width`` at ``accuracy``.

    >>> inputs_needed(0.5)
    97
    """
    p = min(max(float(accuracy), 0.05), 0.95) if accuracy == accuracy else 0.5
    return int(np.ceil(1.959964**2 * p * (1 - p) / half_width**2))


def _span(diff: float, lo: float, hi: float, scale: float, fmt: str, unit: str) -> str:
    values = [fmt.format(scale * v) for v in (diff, lo, hi)]
    return f"{values[0]}{unit} [{values[1]}, {values[2]}]"


def _relation(diff: float, lo: float, hi: float, what: str) -> str:
    numbers = _span(diff, lo, hi, 100, "{:+.1f}", " points")
    if lo > 0:
        return f"beat {what} ({numbers})"
    if hi < 0:
        return f"did worse than {what} ({numbers})"
    return f"was not distinguishable from {what} ({numbers})"


def verdict(summary: pd.DataFrame, confidence: pd.DataFrame) -> str:
    """The answer in one sentence, whatever it is: the most accurate rule against the most
    confident model, the model best on average and random (with a warning when it is the
    best of several rules tried on the same inputs), and whether alignment adds to confidence
    for that rule's source."""
    rules = summary[summary["source"].fillna("").astype(str) != ""]
    if rules.empty:
        return "No source scored every model on a disputed input, so no rule was evaluated."
    best = rules.sort_values("accuracy", ascending=False, kind="stable").iloc[0]
    against = [
        ("max-softmax", "the most confident model"),
        ("best-on-average", "the model best on average"),
        ("random", "random"),
    ]
    relations = [
        _relation(best[f"vs {b}"], best[f"vs {b} lo"], best[f"vs {b} hi"], what)
        for b, what in against
        if pd.notna(best.get(f"vs {b}"))
    ]
    text = (
        f"On {int(best['inputs'])} disputed inputs the most accurate of {len(rules)} alignment "
        f"rules, {best['method']} ({100 * best['accuracy']:.1f}%), "
        + ", ".join(relations[:-1])
        + (" and " if len(relations) > 1 else "")
        + relations[-1]
    )
    if len(rules) > 1:
        text += (
            f" (the best of {len(rules)} rules on the same inputs, so these intervals are "
            "optimistic)"
        )
    row = confidence[confidence["source"] == best["source"]] if len(confidence) else confidence
    if len(row):
        r = row.iloc[0]
        gain = _span(r["auc_gain"], r["auc_gain_lo"], r["auc_gain_hi"], 1, "{:+.3f}", "")
        if r["auc_gain_lo"] > 0:
            effect = "raised"
        elif r["auc_gain_hi"] < 0:
            effect = "lowered"
        else:
            effect = "did not measurably change"
        text += (
            f"; adding {r['source_label']}'s alignment to confidence {effect} the AUC for "
            f"telling right from wrong predictions ({r['auc_combined']:.3f} vs "
            f"{r['auc_confidence']:.3f}, difference {gain})"
        )
    return text + "."


def select_uncertain(scores: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` inputs on which the judges are least certain which model to trust.

    Least certain first: the judges agree least on the pick (share of judges naming the most
    named model), then the gap between the best and second-best model's alignment, averaged
    over judges, is smallest. Scores from people and simulated participants are ignored.
    """
    require(scores, SCORE_COLUMNS, "scores")
    check_int("select_uncertain", "n", n, low=1)
    judged = scores[scores["source"].astype(str).str.startswith("judge:")]
    if judged.empty:
        raise ConfigError("No judge scores to select from; give at least one judge.")
    rows: list[tuple[float, float, int, str]] = []
    for input_id, group in judged.groupby("input_id", sort=False):
        picks, gaps = [], []
        for _, s in group.groupby("source", sort=False):
            picks.append("|".join(_pick(s, "alignment", "margin")))
            values = np.sort(s["alignment"].to_numpy(dtype=np.float64))[::-1]
            gaps.append(values[0] - values[1] if len(values) > 1 else 1.0)
        agreement = pd.Series(picks).value_counts().iloc[0] / len(picks)
        rows.append((agreement, float(np.mean(gaps)), len(rows), str(input_id)))
    rows.sort()
    return [r[3] for r in rows[:n]]
