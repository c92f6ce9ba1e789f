"""Simulated answer tables with participant, target and IRI heterogeneity (logit-normal).

Answer (participant p, IRI i of target t, model m) is correct with probability
``expit(logit + u_p + v_t + w_i)``, with ``u ~ N(0, participant_sd)``, ``v ~ N(0, target_sd)``
shared by every model's IRIs of the target, and ``w ~ N(0, iri_sd)``. Every model has the same
population alignment (a true null for comparisons). Used to prove that percalign's intervals
and tests hold their rates (``benchmarks/stats_calibration.py``, ``tests/scoring``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from percalign._checks import check_float, check_int
from percalign.scoring.alignment import alignment
from percalign.scoring.compare import compare

__all__ = [
    "Scenario",
    "calibration",
    "population_alignment",
    "population_components",
    "population_shared",
    "simulate",
]


@dataclass(frozen=True)
class Scenario:
    """One simulated design.

    Attributes:
        name: label in tables.
        participants: participants, shared by every model.
        targets: targets per model; every model inverts the same targets.
        iris_per_target: IRIs per target and model (1: each IRI has its own target).
        models: models, all with the same population alignment.
        participant_sd: SD of the participant effects (logit scale).
        target_sd: SD of the target effects, shared across models (logit scale).
        iri_sd: SD of the IRI effects (logit scale).
        logit: the common mean logit (0: alignment at chance 1/2).
        answered: share of participant x IRI pairs answered (1: complete design).
        name_targets: whether the table has a ``target`` column (False: the analysis sees
            only items, as in an answer table without targets).
        shift: logit difference between consecutive models (0: a true null; model ``j``
            has mean logit ``logit + j * shift``).
    """

    name: str
    participants: int = 30
    targets: int = 20
    iris_per_target: int = 1
    models: int = 2
    participant_sd: float = 0.5
    target_sd: float = 0.0
    iri_sd: float = 1.0
    logit: float = 0.0
    answered: float = 1.0
    name_targets: bool = True
    shift: float = 0.0

    def __post_init__(self) -> None:
        for field in ("participants", "targets", "iris_per_target", "models"):
            check_int("Scenario", field, getattr(self, field), low=1)
        for field in ("participant_sd", "target_sd", "iri_sd"):
            check_float("Scenario", field, getattr(self, field), low=0.0)
        check_float("Scenario", "answered", self.answered, 0.0, 1.0, low_open=True)


def population_alignment(scenario: Scenario) -> float:
    """The estimand: the mean probability of a correct answer over the populations of
    participants, targets and IRIs (Gauss-Hermite quadrature, 80 nodes)."""
    sd = np.sqrt(scenario.participant_sd**2 + scenario.target_sd**2 + scenario.iri_sd**2)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    values = 1 / (1 + np.exp(-(scenario.logit + sd * nodes)))
    return float(np.sum(weights * values) / np.sqrt(2 * np.pi))


def _expected(logit: float, outer: float, inner: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature weights over x ~ N(0, outer), and E over z ~ N(0, inner) of
    expit(logit + x + z) at each node."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    means = (1 / (1 + np.exp(-(logit + outer * nodes[:, None] + inner * nodes)))) @ weights
    return weights, means


def _covariance(logits: tuple[float, float], outer: float, inner: float) -> float:
    """Covariance over x ~ N(0, outer) of the expected answers of two models sharing x."""
    w, a = _expected(logits[0], outer, inner)
    _, b = _expected(logits[1], outer, inner)
    return float(w @ (a * b) - (w @ a) * (w @ b))


def population_components(scenario: Scenario, model: int = 0) -> dict[str, float]:
    """The true variance components of one model's answers on the probability scale (see
    :mod:`percalign.scoring.components`): ``mean``, ``participant`` (variance over
    participants of their expected share correct), ``target``, ``iri`` and ``residual``, by
    nested Gauss-Hermite quadrature."""
    s = scenario
    logit = s.logit + model * s.shift
    both = (logit, logit)
    item_sd = np.hypot(s.target_sd, s.iri_sd)
    participant = _covariance(both, s.participant_sd, item_sd)
    target = _covariance(both, s.target_sd, np.hypot(s.participant_sd, s.iri_sd))
    item = _covariance(both, item_sd, s.participant_sd)
    mean = population_alignment(replace(s, logit=logit))
    return {
        "mean": mean,
        "participant": participant,
        "target": target,
        "iri": item - target,
        "residual": mean * (1 - mean) - participant - item,
    }


def population_shared(scenario: Scenario, a: int = 0, b: int = 1) -> dict[str, float]:
    """The true covariances of models ``a`` and ``b`` (see
    :class:`~percalign.scoring.components.Shared`): ``participant``, over participants, and
    ``target``, over the targets both models inverted, of their expected shares correct."""
    s = scenario
    logits = (s.logit + a * s.shift, s.logit + b * s.shift)
    return {
        "participant": _covariance(logits, s.participant_sd, np.hypot(s.target_sd, s.iri_sd)),
        "target": _covariance(logits, s.target_sd, np.hypot(s.participant_sd, s.iri_sd)),
    }


def simulate(scenario: Scenario, rng: np.random.Generator) -> pd.DataFrame:
    """One answer table of ``scenario``: ``participant``, ``item``, ``target`` (when named),
    ``model``, ``correct``; one answer per answered participant x IRI pair."""
    s = scenario
    u = rng.normal(0, s.participant_sd, s.participants)
    v = rng.normal(0, s.target_sd, s.targets)
    per_model = s.targets * s.iris_per_target
    target = np.tile(np.repeat(np.arange(s.targets), s.iris_per_target), s.models)
    model = np.repeat(np.arange(s.models), per_model)
    w = rng.normal(0, s.iri_sd, per_model * s.models)
    logits = s.logit + u[:, None] + (s.shift * model + v[target] + w)[None, :]
    correct = rng.random(logits.shape) < 1 / (1 + np.exp(-logits))
    answered = rng.random(logits.shape) < s.answered
    p_idx, i_idx = np.nonzero(answered)
    columns = {
        "participant": p_idx.astype(str),
        "item": i_idx.astype(str),
        "target": target[i_idx].astype(str),
        "model": np.char.add("m", model[i_idx].astype(str)),
        "correct": correct[p_idx, i_idx].astype(np.int8),
    }
    if not s.name_targets:
        del columns["target"]
    return pd.DataFrame(columns)


def calibration(
    scenario: Scenario, tables: int, n_boot: int, seed: int, alpha: float = 0.05
) -> dict[str, float]:
    """How often percalign's intervals cover and its tests reject on ``tables`` simulated
    tables of ``scenario`` (every model at the same alignment, so every rejection of a
    comparison is a false positive).

    Returns:
        ``coverage``: share of per-model alignment CIs that cover
        :func:`population_alignment`; ``difference_coverage``: share of pairwise difference
        CIs that cover 0; ``comparison_fp``: share of pairs with p < ``alpha``;
        ``comparison_fwer``: share of tables with a Holm-corrected pair below ``alpha``; when
        the scenario is at chance (``logit`` 0) also ``chance_fp`` and ``chance_fwer``, the
        same for the tests of alignment against chance.
    """
    rng = np.random.default_rng(seed)
    truth = population_alignment(scenario)
    covered: list[bool] = []
    diff_covered: list[bool] = []
    fp: list[bool] = []
    fwer: list[bool] = []
    chance_fp: list[bool] = []
    chance_fwer: list[bool] = []
    for k in range(tables):
        table = simulate(scenario, rng)
        per_model = alignment(table, ["model"], n_boot=n_boot, seed=seed + k)
        covered.extend((per_model["ci_low"] <= truth) & (truth <= per_model["ci_high"]))
        chance_fp.extend(per_model["p_chance"] < alpha)
        chance_fwer.append(bool((per_model["p_chance_holm"] < alpha).any()))
        if scenario.models > 1:
            pairs = compare(table, "model", n_boot=n_boot, seed=seed + k)
            diff_covered.extend((pairs["ci_low"] <= 0) & (pairs["ci_high"] >= 0))
            fp.extend(pairs["p"] < alpha)
            fwer.append(bool((pairs["p_holm"] < alpha).any()))
    rates = {"coverage": float(np.mean(covered))}
    if scenario.models > 1:
        rates.update(
            difference_coverage=float(np.mean(diff_covered)),
            comparison_fp=float(np.mean(fp)),
            comparison_fwer=float(np.mean(fwer)),
        )
    if scenario.logit == 0:
        rates.update(chance_fp=float(np.mean(chance_fp)), chance_fwer=float(np.mean(chance_fwer)))
    return rates
