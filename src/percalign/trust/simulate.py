"""Simulated disputed-input tables, to prove that the trust analysis's intervals hold their rate.

Input i, model m: the confidence logit is ``c = mean + u_m + d_i + e`` (model shifts ``u``,
input difficulty ``d`` shared by the input's models, ``e ~ N(0, 1)``), reported as the
max-softmax ``sigmoid(c)``; the model is right with probability ``sigmoid(slope * c)``, the
same for every model, so confidence is calibrated on the logit scale. Alignment comes from a
latent ``a = alpha_m + link * c + v_i + info * right + s_m * n`` (model level ``alpha`` and
scale ``s``, input effect ``v``, ``n ~ N(0, 1)``), reported as ``sigmoid(a)`` rounded to
``1 / levels`` (the share of a few IRIs judged right); the margin is ``a`` plus noise. With
``info = 0`` alignment carries no information beyond confidence (it is correlated with it
through ``link``, and with the model through ``alpha`` and ``s``): a true null for the AUC and
pick-accuracy gains. A wrong model predicts a random other label; only inputs on which the
models' labels differ are kept.

The estimands come from one large table of the same scenario: the AUCs and pick accuracies
of the logistic models fit on it (out of fold), every rule's and baseline's accuracy on its
disputed inputs, and the best-on-average model from its accuracies over all inputs. Used by
``benchmarks/trust_calibration.py`` and ``tests/trust``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from percalign._checks import check_float, check_int
from percalign.trust.confidence import _slots, confidence_logit, cross_validate, pick_accuracy
from percalign.trust.rule import BASELINES, _baselines, _mean_where, _tied, evaluate

__all__ = ["Scenario", "calibration", "simulate", "truth"]

LABELS = 10


@dataclass(frozen=True)
class Scenario:
    """One simulated design.

    Attributes:
        name: label in tables.
        inputs: disputed inputs per table.
        models: models.
        model_sd: SD of the models' confidence shifts and alignment levels (logit scale).
        input_sd: SD of the inputs' effects on confidence, and on alignment.
        info: effect of being right on the alignment latent (0: no information beyond
            confidence, the null).
        link: loading of the alignment latent on the confidence logit.
        levels: alignment rounded to multiples of 1 / levels (0: not rounded).
        mean: mean confidence logit.
        slope: P(right) = sigmoid(slope * confidence logit).
    """

    name: str
    inputs: int = 100
    models: int = 3
    model_sd: float = 0.5
    input_sd: float = 1.0
    info: float = 0.0
    link: float = 0.5
    levels: int = 4
    mean: float = 1.0
    slope: float = 1.0

    def __post_init__(self) -> None:
        check_int("Scenario", "inputs", self.inputs, low=6)
        check_int("Scenario", "models", self.models, low=2)
        check_int("Scenario", "levels", self.levels, low=0)
        for field in ("model_sd", "input_sd", "info"):
            check_float("Scenario", field, getattr(self, field), low=0.0)


def _draw(s: Scenario, n: int, rng: np.random.Generator, models: dict[str, np.ndarray]) -> dict:
    """``n`` candidate inputs (agreements included) as (inputs, models) arrays."""
    d = rng.normal(0, s.input_sd, (n, 1))
    c = s.mean + models["shift"] + d + rng.normal(size=(n, s.models))
    right = rng.random((n, s.models)) < 1 / (1 + np.exp(-s.slope * c))
    latent = (
        models["level"]
        + s.link * c
        + rng.normal(0, s.input_sd, (n, 1))
        + s.info * right
        + models["scale"] * rng.normal(size=(n, s.models))
    )
    share = 1 / (1 + np.exp(-latent))
    alignment = np.round(share * s.levels) / s.levels if s.levels else share
    label = rng.integers(0, LABELS, (n, 1))
    wrong = (label + 1 + rng.integers(0, LABELS - 1, (n, s.models))) % LABELS
    predicted = np.where(right, label, wrong)
    return {
        "confidence": 1 / (1 + np.exp(-c)),
        "right": right,
        "alignment": alignment,
        "margin": latent + rng.normal(0, 0.5, (n, s.models)),
        "label": np.broadcast_to(label, (n, s.models)),
        "predicted": predicted,
        "disputed": (predicted != predicted[:, :1]).any(axis=1),
    }


def _models(s: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "shift": rng.normal(0, s.model_sd, s.models),
        "level": rng.normal(0, s.model_sd, s.models),
        "scale": np.exp(rng.normal(0, 0.3, s.models)),
    }


def _population(s: Scenario, seed: int) -> dict[str, np.ndarray]:
    """The scenario's fixed model effects (one draw per scenario and seed)."""
    return _models(s, np.random.default_rng([seed, 7]))


def _names(s: Scenario) -> list[str]:
    return [f"m{j}" for j in range(s.models)]


def simulate(
    scenario: Scenario, rng: np.random.Generator, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One table of ``scenario``: ``(predictions, scores)`` as :func:`percalign.trust.evaluate`
    takes them, on ``scenario.inputs`` disputed inputs (agreements left out), one source
    ``judge:sim``. ``seed`` fixes the models' effects (shared with :func:`truth`)."""
    s, models = scenario, _population(scenario, seed)
    parts, have = [], 0
    while have < s.inputs:
        draw = _draw(s, 4 * s.inputs, rng, models)
        keep = {k: v[draw["disputed"]] for k, v in draw.items() if k != "disputed"}
        parts.append(keep)
        have += len(keep["right"])
    arrays = {k: np.concatenate([p[k] for p in parts])[: s.inputs] for k in parts[0]}
    ids = np.repeat([f"i{i}" for i in range(s.inputs)], s.models)
    model = np.tile(_names(s), s.inputs)
    predictions = pd.DataFrame(
        {
            "input_id": ids,
            "label": arrays["label"].ravel(),
            "model": model,
            "predicted": arrays["predicted"].ravel(),
            "confidence": arrays["confidence"].ravel(),
        }
    )
    scores = pd.DataFrame(
        {
            "input_id": ids,
            "model": model,
            "source": "judge:sim",
            "alignment": arrays["alignment"].ravel(),
            # per-score uncertainty columns the analysis carries along but does not use
            "lo": arrays["alignment"].ravel(),
            "hi": arrays["alignment"].ravel(),
            "margin": arrays["margin"].ravel(),
            "margin_se": 0.0,
            "n": max(s.levels, 1),
        }
    )
    return predictions, scores


def truth(scenario: Scenario, seed: int = 0, n: int = 40_000) -> dict[str, float]:
    """The estimands of ``scenario`` from one table of ``n`` candidate inputs: ``auc_*`` and
    ``accuracy_*`` (confidence, combined, gain), each rule's and baseline's accuracy (keys as
    the summary's methods) and ``reference:MODEL`` (accuracy over all inputs)."""
    s, models = scenario, _population(scenario, seed)
    draw = _draw(s, n, np.random.default_rng([seed, 11]), models)
    names = _names(s)
    out = {f"reference:{m}": float(draw["right"][:, j].mean()) for j, m in enumerate(names)}
    best = max(names, key=lambda m: (out[f"reference:{m}"], -names.index(m)))
    d = {k: v[draw["disputed"]] for k, v in draw.items() if k != "disputed"}
    g, right = len(d["right"]), d["right"].astype(np.float64)
    rows = pd.DataFrame(
        {
            "confidence": confidence_logit(d["confidence"].ravel()),
            "alignment": d["alignment"].ravel(),
            "margin": d["margin"].ravel(),
        }
    )
    groups, within = np.repeat(np.arange(g), s.models), np.tile(names, g)
    y = right.ravel()
    slots = _slots(groups, g)
    ones = np.ones((1, g))
    from sklearn.metrics import roc_auc_score

    for kind, features, z in (
        ("confidence", rows[["confidence"]], ()),
        ("combined", rows, ("alignment", "margin")),
    ):
        fit = cross_validate(features, y, groups, 2, standardize=z, within=within)
        out[f"auc_{kind}"] = float(roc_auc_score(y, fit.probability))
        out[f"accuracy_{kind}"] = float(pick_accuracy(fit.probability[None], y, slots, ones)[0])
        if kind == "combined":
            combined = fit.probability.reshape(g, s.models)
        else:
            confidence = fit.probability.reshape(g, s.models)
    if s.info == 0:
        # alignment is independent of being right given confidence, so the population fit
        # gives it no weight: the combined model is the confidence model
        for measure in ("auc", "accuracy"):
            out[f"{measure}_combined"] = out[f"{measure}_confidence"]
        combined = confidence
    for measure in ("auc", "accuracy"):
        out[f"{measure}_gain"] = out[f"{measure}_combined"] - out[f"{measure}_confidence"]
    out["absolute:judge:sim"] = float(_mean_where(_tied(d["alignment"], d["margin"]), right).mean())
    out["standardized:judge:sim"] = _standardized_at_n(s, seed, 5 * n, models)
    out["confidence+alignment:judge:sim"] = float(
        _mean_where(_tied(combined, np.full_like(combined, np.nan)), right).mean()
    )
    wide = pd.concat(
        {
            "confidence": pd.DataFrame(d["confidence"], columns=names),
            "predicted": pd.DataFrame(d["predicted"], columns=names),
        },
        axis=1,
    )
    for name, values in _baselines(wide, right, names, best).items():
        out[name] = float(values.mean())
    return out


def _standardized_at_n(s: Scenario, seed: int, n: int, models: dict[str, np.ndarray]) -> float:
    """The standardized rule's expected accuracy as applied: z-scores fitted on each table's
    own ``s.inputs`` disputed inputs (the mean over the tables that ``n`` candidates fill)."""
    draw = _draw(s, n, np.random.default_rng([seed, 13]), models)
    tables = int(draw["disputed"].sum()) // s.inputs
    shape = (tables, s.inputs, s.models)
    keys = ("alignment", "margin", "right")
    take = {k: draw[k][draw["disputed"]][: tables * s.inputs].reshape(shape) for k in keys}

    def z(v: np.ndarray) -> np.ndarray:
        sd = v.std(axis=1, keepdims=True)
        return np.where(sd > 0, (v - v.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1), 0)

    tied = _tied(
        z(take["alignment"]).reshape(-1, s.models), z(take["margin"]).reshape(-1, s.models)
    )
    return float(_mean_where(tied, take["right"].reshape(-1, s.models)).mean())


def calibration(
    scenario: Scenario, tables: int, n_boot: int, seed: int = 0, folds: int = 5
) -> dict[str, float]:
    """Run :func:`percalign.trust.evaluate` on ``tables`` tables of ``scenario`` and count,
    against :func:`truth`:

    * ``cover:NAME``: coverage of each printed interval: the confidence table's AUCs, pick
      accuracies and gains, every rule's and baseline's accuracy, and every rule minus
      baseline;
    * ``raised:NAME`` / ``lowered:NAME`` (the two gains): the share of tables whose whole CI
      lies above / below 0, and ``fp:NAME``, either (false positives under the null);
    * ``mean:NAME``: the mean estimate (the gains' power under an alternative is
      ``raised``).
    """
    check_int("calibration", "tables", tables, low=1)
    target = truth(scenario, seed)
    reference = {m: target[f"reference:{m}"] for m in _names(scenario)}
    rng = np.random.default_rng([seed, 3])
    counts: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        counts.setdefault(key, []).append(value)

    def record(name: str, value: float, lo: float, hi: float, true: float) -> None:
        add(f"cover:{name}", float(lo <= true <= hi))
        add(f"mean:{name}", value)
        if name.endswith("gain"):
            add(f"raised:{name}", float(lo > 0))
            add(f"lowered:{name}", float(hi < 0))
            add(f"fp:{name}", float(lo > 0 or hi < 0))

    for k in range(tables):
        predictions, scores = simulate(scenario, rng, seed)
        _, summary, confidence = evaluate(
            predictions,
            scores,
            reference_accuracy=reference,
            folds=folds,
            n_boot=n_boot,
            seed=seed + k,
        )
        row = confidence.iloc[0]
        for measure in ("auc", "accuracy"):
            for kind in ("confidence", "combined", "gain"):
                key = f"{measure}_{kind}"
                record(key, row[key], row[f"{key}_lo"], row[f"{key}_hi"], target[key])
        for _, r in summary.iterrows():
            method = r["method"]
            record(method, r["accuracy"], r["lo"], r["hi"], target[method])
            if r["source"]:
                for base in BASELINES:
                    true = target[method] - target[base]
                    record(
                        f"{method} - {base}",
                        r[f"vs {base}"],
                        r[f"vs {base} lo"],
                        r[f"vs {base} hi"],
                        true,
                    )
    rates = {key: float(np.mean(values)) for key, values in counts.items()}
    rates.update({f"true:{k}": v for k, v in target.items() if not k.startswith("reference")})
    return rates
