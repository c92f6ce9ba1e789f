"""percalign's intervals and tests hold their rates on simulated null tables (reduced counts;
benchmarks/stats_calibration.py runs the full scenarios)."""

import numpy as np
import pandas as pd
import pytest

from percalign.errors import ConfigError
from percalign.scoring import CrossedDesign, target_ci
from percalign.scoring.simulate import Scenario, calibration, population_alignment, simulate


@pytest.mark.slow
def test_null_comparisons_and_single_alignments_hold_their_rates():
    # the audit's worst case: item SD 1, 20 IRIs per model; a comparison that treats each
    # model's IRIs as fixed rejected 44-48% of such tables
    scenario = Scenario("audit", participants=30, targets=20, iri_sd=1.0, name_targets=False)
    rates = calibration(scenario, tables=200, n_boot=150, seed=1)
    assert rates["comparison_fp"] <= 0.10, rates
    assert rates["coverage"] >= 0.90, rates
    assert rates["chance_fp"] <= 0.10, rates


@pytest.mark.slow
def test_judge_intervals_cover_when_targets_differ():
    scenario = Scenario(
        "judge",
        participants=1,
        targets=12,
        iris_per_target=3,
        models=1,
        participant_sd=0.0,
        target_sd=1.5,
        iri_sd=0.5,
        logit=1.0,
    )
    assert calibration(scenario, tables=200, n_boot=100, seed=2)["coverage"] >= 0.90


def test_target_resampling_widens_the_judge_interval_when_targets_differ():
    rng = np.random.default_rng(0)
    # 10 targets, 5 IRIs each, all IRIs of a target alike: 10 independent units, not 50
    per_target = rng.random(10) < 0.5
    correct = np.repeat(per_target, 5).astype(int)
    targets = np.repeat(np.arange(10), 5)
    lo, hi = target_ci(correct, targets, n_boot=1000, seed=0)
    own_lo, own_hi = target_ci(correct, np.arange(50), n_boot=1000, seed=0)
    assert hi - lo > 1.5 * (own_hi - own_lo)


def test_paired_targets_cancel_in_the_difference():
    # both models inverted the same targets; the targets' difficulty dominates
    scenario = Scenario("paired", participants=20, targets=20, target_sd=2.0, iri_sd=0.2)
    table = simulate(scenario, np.random.default_rng(3))
    paired = CrossedDesign.of(table, "model").replicates(500, 0)
    unpaired = CrossedDesign.of(table.drop(columns="target"), "model").replicates(500, 0)
    width = lambda r: np.subtract(*np.quantile(r[:, 0] - r[:, 1], [0.975, 0.025]))  # noqa: E731
    assert width(paired) < 0.6 * width(unpaired)


def test_crossed_design_grid_and_levels():
    t = pd.DataFrame(
        {
            "participant": ["a", "a", "b", "b", "b"],
            "item": ["x", "y", "x", "y", "y"],
            "model": ["m", "n", "m", "n", "n"],
            "correct": [1, 0, 1, 1, 0],
        }
    )
    design = CrossedDesign.of(t, "model")
    assert design.counts.tolist() == [[1, 1], [1, 2]]
    assert design.hits.tolist() == [[1, 0], [1, 1]]
    assert design.levels == ("m", "n")
    assert design.estimates().tolist() == pytest.approx([1.0, 1 / 3])
    reps = design.replicates(100, 0)
    assert reps.shape == (100, 2) and np.nanmax(reps) <= 1


def test_population_alignment_matches_monte_carlo():
    s = Scenario("x", participant_sd=0.5, target_sd=1.0, iri_sd=1.0, logit=0.8)
    draws = np.random.default_rng(0).normal(0.8, np.sqrt(0.25 + 1 + 1), 2_000_000)
    assert population_alignment(s) == pytest.approx(np.mean(1 / (1 + np.exp(-draws))), abs=1e-3)


def test_bad_scenarios():
    with pytest.raises(ConfigError, match="participants"):
        Scenario("x", participants=0)
    with pytest.raises(ConfigError, match="answered"):
        Scenario("x", answered=0.0)


def test_comparing_a_column_that_splits_items_is_refused():
    t = pd.DataFrame(
        {
            "participant": ["a", "b"],
            "item": ["x", "x"],
            "platform": ["web", "lab"],
            "correct": [1, 0],
        }
    )
    with pytest.raises(ConfigError, match="item 'x' appears under 2"):
        CrossedDesign.of(t, "platform")


def test_a_judge_interval_of_all_failures_or_all_successes_has_width():
    # 0 of 96 IRIs over 48 targets: a percentile bootstrap gives [0, 0]; the exact interval
    # counts each target once
    targets = np.repeat(np.arange(48), 2)
    lo, hi = target_ci(np.zeros(96), targets, n_boot=200, seed=0)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 48)) and 0.07 < hi < 0.075
    assert target_ci(np.ones(96), targets, n_boot=200, seed=0) == pytest.approx((1 - hi, 1.0))
    # a mixed outcome keeps the bootstrap
    assert target_ci(np.r_[np.zeros(95), 1], targets, n_boot=200, seed=0)[0] == 0
    # it misses a true rate above its bound at most 2.5% of the time: all 48 targets fail
    # with probability (1 - p)^48, which is below 2.5% for every p above the bound
    rng = np.random.default_rng(1)
    for p in (0.02, 0.05, hi * 0.99, hi * 1.01, 0.1):
        per_target = rng.random((4000, 48)) < p
        missed = [
            target_ci(np.repeat(row, 2).astype(float), targets, n_boot=50)[1] < p
            for row in per_target[~per_target.any(axis=1)]
        ]
        assert sum(missed) / 4000 <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / 4000)
