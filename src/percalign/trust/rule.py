"""Which model to trust when models disagree: the alignment rule, its baselines, and selection.

Pure pandas/numpy on three long tables:

* predictions: one row per input x model: ``input_id``, ``label`` (the truth), ``model``,
  ``predicted``, ``confidence`` (max softmax);
* scores: one row per input x model x source (a judge, or ``humans``): ``alignment`` (share of
  the model's IRIs of that input judged like their target), ``margin`` (a continuous
  tie-breaker: mean of (d_foil - d_target) / (d_foil + d_target); NaN for humans) and ``n``
  (IRIs or answers behind it);
* the per-input table and the summary that :func:`evaluate` makes from them.

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

__all__ = [
    "BASELINES",
    "PREDICTION_COLUMNS",
    "SCORE_COLUMNS",
    "disagreements",
    "evaluate",
    "human_scores",
    "judge_scores",
    "select_uncertain",
]

PREDICTION_COLUMNS = ("input_id", "label", "model", "predicted", "confidence")
SCORE_COLUMNS = ("input_id", "model", "source", "alignment", "margin", "n")
BASELINES = {
    "random": "a model chosen at random (expected accuracy)",
    "max-softmax": "the most confident model (highest softmax)",
    "best-on-average": "always the model with the best accuracy over all inputs",
    "majority": "the label most models predict (ties: expected accuracy)",
    "oracle": "right when any model is right (upper bound)",
}


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(
            f"The {what} table lacks column(s) {missing}; it needs {list(columns)}. "
            f"It has: {list(table.columns)}."
        )


def disagreements(predictions: pd.DataFrame) -> list[str]:
    """Inputs on which the models do not all predict the same label, in first-seen order.

    >>> p = pd.DataFrame({"input_id": ["a", "a", "b", "b"], "label": [1, 1, 2, 2],
    ...                   "model": ["m", "n", "m", "n"], "predicted": [1, 7, 2, 2],
    ...                   "confidence": [0.9, 0.8, 0.9, 0.9]})
    >>> disagreements(p)
    ['a']
    """
    _require(predictions, PREDICTION_COLUMNS, "predictions")
    distinct = predictions.groupby("input_id", sort=False)["predicted"].nunique()
    return [str(i) for i in distinct[distinct > 1].index]


def judge_scores(judgments: pd.DataFrame, metric: str = "other_2afc") -> pd.DataFrame:
    """Per input x model x judge alignment from judge decisions on IRIs.

    Args:
        judgments: rows of :func:`percalign.judges.judge_run` with ``input_id`` and ``model``
            columns added (the IRI's target and the model inverted).
        metric: ``other_2afc`` (IRI vs its target and another target) or ``seed_2afc``
            (IRI vs its target and its seed, the paper's proxy).
    """
    foils = {"other_2afc": "d_other", "seed_2afc": "d_seed"}
    if metric not in foils:
        raise ConfigError(f"Unknown trust metric {metric!r}; use one of {sorted(foils)}.")
    _require(judgments, ("input_id", "model", "judge", metric, "d_target", foils[metric]), "judge")
    d_t = judgments["d_target"].astype(float)
    d_f = judgments[foils[metric]].astype(float)
    total = (d_t + d_f).replace(0.0, np.nan)
    frame = pd.DataFrame(
        {
            "input_id": judgments["input_id"].astype(str),
            "model": judgments["model"].astype(str),
            "source": judgments["judge"].astype(str),
            "aligned": judgments[metric].astype(float),
            "margin": ((d_f - d_t) / total).fillna(0.0),
        }
    )
    out = frame.groupby(["input_id", "model", "source"], sort=False).agg(
        alignment=("aligned", "mean"), margin=("margin", "mean"), n=("aligned", "size")
    )
    return out.reset_index()


def human_scores(answers: pd.DataFrame, iris: pd.DataFrame) -> pd.DataFrame:
    """Per input x model alignment from people's answers on the IRIs of a trust analysis.

    Args:
        answers: the answer table (after exclusions), with ``query`` (the IRI's stimulus id,
            its SHA-256) and ``correct``.
        iris: ``iri_sha256``, ``input_id`` and ``model`` of every IRI in the analysis.
    """
    _require(answers, ("query", "correct"), "answer")
    _require(iris, ("iri_sha256", "input_id", "model"), "IRI")
    merged = answers[["query", "correct"]].merge(
        iris.rename(columns={"iri_sha256": "query"}), on="query", how="inner"
    )
    out = merged.groupby(["input_id", "model"], sort=False).agg(
        alignment=("correct", "mean"), n=("correct", "size")
    )
    out = out.reset_index()
    out["source"] = "humans"
    out["margin"] = np.nan
    out["input_id"] = out["input_id"].astype(str)
    return out[list(SCORE_COLUMNS)]


def _pick(scores: pd.DataFrame) -> list[str]:
    """Models with the highest alignment, then (among ties) the highest margin."""
    best = scores[scores["alignment"] == scores["alignment"].max()]
    if best["margin"].notna().all():
        best = best[best["margin"] == best["margin"].max()]
    return best["model"].tolist()


def _share(models: Sequence[str], right: Mapping[Any, bool]) -> float:
    return float(np.mean([right[m] for m in models]))


def _interval(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, str]:
    if np.isin(values, (0.0, 1.0)).all():
        lo, hi = wilson(int(values.sum()), len(values))
        return lo, hi, "wilson"
    lo, hi = bootstrap_ci(values, n_boot, seed)
    return lo, hi, "bootstrap"


def evaluate(
    predictions: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    reference_accuracy: Mapping[str, float] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rule "trust the most aligned model" against the baselines, on the disagreements.

    Args:
        predictions: every evaluated input x model (agreements included: they define the
            best-on-average model unless ``reference_accuracy`` is given).
        scores: alignment per input x model x source (:func:`judge_scores`,
            :func:`human_scores`). A source is evaluated on the disagreement inputs where it
            scored every model.
        reference_accuracy: accuracy per model that names the best-on-average model
            (default: accuracy over all rows of ``predictions``).
        n_boot, seed: bootstrap of CIs that are not binomial and of the paired differences.

    Returns:
        ``(per_input, summary)``. per_input: one row per disagreement input with the label,
        each model's prediction and confidence, each source's alignment per model, pick and
        outcome. summary: one row per method (``rule:SOURCE`` and each baseline) with
        ``inputs``, ``accuracy`` and its 95% CI, and for the rules the paired difference to
        each baseline with its bootstrap CI.
    """
    _require(predictions, PREDICTION_COLUMNS, "predictions")
    _require(scores, SCORE_COLUMNS, "scores")
    check_int("evaluate", "n_boot", n_boot, low=100)
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
    if not disputed:
        raise ConfigError(
            "The models agree on every input, so there is nothing to decide; use more inputs "
            "(--n-images) or models that differ more."
        )
    sources = list(dict.fromkeys(scores["source"]))
    by_input = {k: g for k, g in pred.groupby("input_id", sort=False)}
    scored = {k: g for k, g in scores.groupby(["input_id", "source"], sort=False)}
    rows = []
    for input_id in disputed:
        group = by_input[input_id].set_index("model")
        right = group["right"].to_dict()
        row: dict[str, object] = {"input_id": input_id, "label": group["label"].iloc[0]}
        for m in models:
            row[f"pred:{m}"] = group.at[m, "predicted"]
            row[f"conf:{m}"] = round(float(group.loc[m, "confidence"]), 4)
        conf = group["confidence"]
        votes = group["predicted"].value_counts()
        top = votes[votes == votes.max()].index
        row["random"] = _share(models, right)
        row["max-softmax"] = _share(conf[conf == conf.max()].index.tolist(), right)
        row["best-on-average"] = float(right[best_model])
        row["majority"] = float(np.mean([lab == row["label"] for lab in top]))
        row["oracle"] = float(any(right.values()))
        for source in sources:
            s = scored.get((input_id, source))
            if s is None or set(s["model"]) != set(models):
                row[f"pick:{source}"] = None
                row[f"rule:{source}"] = np.nan
                continue
            for _, r in s.iterrows():
                row[f"align:{source}:{r['model']}"] = round(float(r["alignment"]), 4)
            picked = _pick(s)
            row[f"pick:{source}"] = "|".join(picked)
            row[f"rule:{source}"] = _share(picked, right)
        rows.append(row)
    per_input = pd.DataFrame(rows)
    methods = [f"rule:{s}" for s in sources] + list(BASELINES)
    summary = []
    for method in methods:
        kept = per_input[per_input[method].notna()]
        values = kept[method].to_numpy(dtype=np.float64)
        lo, hi, how = _interval(values, n_boot, seed)
        entry: dict[str, object] = {
            "method": method,
            "inputs": len(values),
            "accuracy": float(values.mean()) if len(values) else np.nan,
            "lo": lo,
            "hi": hi,
            "ci": how,
            "detail": f"model {best_model}"
            if method == "best-on-average"
            else BASELINES.get(method, "trust the model whose IRIs are most aligned"),
        }
        if method.startswith("rule:"):
            for base in BASELINES:
                diff = values - kept[base].to_numpy(dtype=np.float64)
                d_lo, d_hi = bootstrap_ci(diff, n_boot, seed)
                entry[f"vs {base}"] = float(diff.mean()) if len(diff) else np.nan
                entry[f"vs {base} lo"], entry[f"vs {base} hi"] = d_lo, d_hi
        summary.append(entry)
    return per_input, pd.DataFrame(summary)


def select_uncertain(scores: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` inputs on which the judges are least certain which model to trust.

    Least certain first: the judges agree least on the pick (share of judges naming the most
    named model), then the gap between the best and second-best model's alignment, averaged
    over judges, is smallest. Human scores in ``scores`` are ignored.
    """
    _require(scores, SCORE_COLUMNS, "scores")
    check_int("select_uncertain", "n", n, low=1)
    judged = scores[scores["source"] != "humans"]
    if judged.empty:
        raise ConfigError("No judge scores to select from; give at least one judge.")
    rows: list[tuple[float, float, int, str]] = []
    for input_id, group in judged.groupby("input_id", sort=False):
        picks, gaps = [], []
        for _, s in group.groupby("source", sort=False):
            picks.append("|".join(_pick(s)))
            values = np.sort(s["alignment"].to_numpy(dtype=np.float64))[::-1]
            gaps.append(values[0] - values[1] if len(values) > 1 else 1.0)
        agreement = pd.Series(picks).value_counts().iloc[0] / len(picks)
        rows.append((agreement, float(np.mean(gaps)), len(rows), str(input_id)))
    rows.sort()
    return [r[3] for r in rows[:n]]
