"""Variance components of a crossed design and planning from a pilot (benchmarks/planning.py
runs the full simulations)."""

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest

from percalign.cli import main
from percalign.errors import ConfigError
from percalign.scoring import (
    Components,
    CrossedDesign,
    Layout,
    Shared,
    alignment,
    difference_power,
    difference_variance,
    mean_variance,
    plan_difference,
    plan_halfwidth,
    predicted_halfwidth,
    shared_components,
    variance_components,
)
from percalign.scoring.simulate import (
    Scenario,
    population_components,
    population_shared,
    simulate,
)


def _pairs_by_brute_force(table: pd.DataFrame) -> dict[str, float]:
    """Mean half squared difference of every class of answer pairs, pair by pair."""
    rows = table.to_dict("records")
    sums: dict[str, list[float]] = {}
    for x, y in itertools.combinations(rows, 2):
        same_p, same_i = x["participant"] == y["participant"], x["item"] == y["item"]
        same_t = x["target"] == y["target"]
        if same_p and same_i:
            continue
        key = (
            "person"
            if same_p and not same_t
            else "iri"
            if same_i
            else "target"
            if same_t and not same_p
            else "none"
            if not same_p and not same_t
            else "person_target"
        )
        sums.setdefault(key, []).append((x["correct"] - y["correct"]) ** 2 / 2)
    return {k: float(np.mean(v)) for k, v in sums.items()}


def test_components_are_the_pair_moments_computed_pair_by_pair():
    scenario = Scenario(
        "small", participants=7, targets=5, iris_per_target=2, models=1, target_sd=1.0, answered=0.7
    )
    table = simulate(scenario, np.random.default_rng(3))
    c = variance_components(CrossedDesign.of(table))[0]
    m = _pairs_by_brute_force(table)
    assert c.participant == pytest.approx(m["none"] - m["person"])
    assert c.target == pytest.approx(m["none"] - m["target"])
    assert c.target + c.iri == pytest.approx(m["none"] - m["iri"])
    assert c.total == pytest.approx(m["none"])
    assert c.mean == pytest.approx(table["correct"].mean())
    assert c.layout == Layout.of(CrossedDesign.of(table))


def test_components_recover_the_simulated_ones_on_a_large_table():
    for scenario in (
        Scenario(
            "k1",
            participants=200,
            targets=200,
            models=1,
            participant_sd=0.6,
            iri_sd=1.0,
            answered=0.5,
            name_targets=False,
        ),
        Scenario(
            "k3",
            participants=150,
            targets=60,
            iris_per_target=3,
            models=1,
            logit=0.8,
            participant_sd=0.5,
            target_sd=1.0,
            iri_sd=0.7,
        ),
    ):
        truth = population_components(scenario)
        if scenario.iris_per_target == 1:  # the pilot cannot tell targets from IRIs
            truth["iri"] += truth.pop("target")
        c = variance_components(CrossedDesign.of(simulate(scenario, np.random.default_rng(1))))[0]
        for name, value in truth.items():
            # about 3 standard errors of each estimate at these sizes
            tolerance = 0.01 if name == "target" else 0.006
            if name != "mean":
                assert getattr(c, name) == pytest.approx(value, abs=tolerance), (
                    scenario.name,
                    name,
                )


def test_shared_components_recover_shared_participants_and_targets():
    scenario = Scenario(
        "paired", participants=300, targets=150, participant_sd=0.7, target_sd=1.0, iri_sd=0.3
    )
    design = CrossedDesign.of(simulate(scenario, np.random.default_rng(2)), "model")
    truth = population_components(scenario)
    # equal models: what they share is each one's own participant and target variance
    assert population_shared(scenario) == pytest.approx(
        {"participant": truth["participant"], "target": truth["target"]}
    )
    shared = shared_components(design, 0, 1)
    # the models are equal: a participant's (a target's) effect is the same in both
    assert shared.participant == pytest.approx(truth["participant"], abs=0.004)
    assert shared.target == pytest.approx(truth["target"], abs=0.008)
    assert shared.targets_shared == 1.0
    unpaired = dataclasses.replace(scenario, name_targets=False)
    design = CrossedDesign.of(simulate(unpaired, np.random.default_rng(2)), "model")
    assert shared_components(design, 0, 1).targets_shared == 0.0


def test_true_variance_of_a_complete_design_is_the_textbook_sum():
    c = Components(
        None,
        0.6,
        participant=0.01,
        target=0.03,
        iri=0.02,
        residual=0.18,
        layout=Layout(20, 36, 36, 3.0),
    )
    lay = Layout(participants=25, iris=48, per_participant=48, iris_per_target=4.0)
    expected = 0.01 / 25 + 0.03 / 12 + 0.02 / 48 + 0.18 / (25 * 48)
    assert mean_variance(c, lay) == pytest.approx(expected)
    # a paired difference of equal conditions keeps the IRIs' and the residual's parts only
    shared = Shared(participant=0.01, target=0.03, targets_shared=1.0)
    assert difference_variance(c, c, shared, lay) == pytest.approx(
        2 * (0.02 / 48 + 0.18 / (25 * 48))
    )


@pytest.mark.slow
def test_closed_forms_match_the_estimate_and_the_bootstrap_by_simulation():
    scenario = Scenario(
        "audit",
        participants=30,
        targets=20,
        iris_per_target=2,
        models=2,
        target_sd=0.8,
        iri_sd=0.6,
        answered=0.8,
    )
    t = population_components(scenario)
    lay = Layout(30, 40, 32.0, 2.0)
    c = Components(None, t["mean"], t["participant"], t["target"], t["iri"], t["residual"], lay)
    shared = Shared(t["participant"], t["target"], 1.0)
    rng = np.random.default_rng(4)
    est, boot, diff, boot_diff = [], [], [], []
    for k in range(200):
        design = CrossedDesign.of(simulate(scenario, rng), "model")
        e = design.estimates()
        est.append(e[0])
        diff.append(e[0] - e[1])
        if k < 40:
            reps = design.replicates(300, k)
            boot.append(np.nanvar(reps[:, 0]))
            boot_diff.append(np.nanvar(reps[:, 0] - reps[:, 1]))
    assert np.var(est) == pytest.approx(mean_variance(c, lay), rel=0.2)
    assert np.var(diff) == pytest.approx(difference_variance(c, c, shared, lay), rel=0.2)
    assert np.mean(boot) == pytest.approx(mean_variance(c, lay, printed=True), rel=0.1)
    assert np.mean(boot_diff) == pytest.approx(
        difference_variance(c, c, shared, lay, printed=True), rel=0.1
    )


def _components(iri: float, participant: float = 0.01, residual: float = 0.2) -> Components:
    return Components(None, 0.6, participant, 0.0, iri, residual, Layout(30, 40, 40.0))


def test_the_floor_is_the_iri_term_and_triggers_exactly_when_it_exceeds_the_target():
    c = _components(iri=0.04)
    floor = plan_halfwidth(c, 0.05).floor
    # the IRIs' term alone, iri / I, up to the bootstrap's small-sample terms
    assert floor == pytest.approx(1.96 * np.sqrt(0.04 / 40), rel=0.02)
    # participants and residual noise do not move it (beyond their share at a million
    # participants, where the floor is taken)
    moved = plan_halfwidth(_components(0.04, 0.05, 0.15), 0.05).floor
    assert moved == pytest.approx(floor, rel=1e-4)
    above = plan_halfwidth(c, floor * 1.01)
    assert above.reachable and above.layout.iris == 40
    assert predicted_halfwidth(c, above.layout) <= floor * 1.01
    fewer = dataclasses.replace(above.layout, participants=above.layout.participants - 1)
    assert predicted_halfwidth(c, fewer) > floor * 1.01
    below = plan_halfwidth(c, floor * 0.99)
    assert not below.reachable and below.iris_needed > 40
    at = plan_halfwidth(c, floor * 0.99, layout=Layout(30, below.iris_needed, 40.0))
    short = plan_halfwidth(c, floor * 0.99, layout=Layout(30, below.iris_needed - 1, 40.0))
    assert at.floor < floor * 0.99 <= short.floor
    assert below.examples and all(e.iris > below.iris_needed for e in below.examples)
    assert all(predicted_halfwidth(c, e) <= floor * 0.99 for e in below.examples)


def test_the_issues_case_asks_for_more_iris_not_more_answers():
    # 30 participants x 40 IRIs, participant SD 0.5 and IRI SD 1 on the logit scale
    scenario = Scenario("audit", participants=30, targets=40, models=1, name_targets=False)
    c = variance_components(CrossedDesign.of(simulate(scenario, np.random.default_rng(0))))[0]
    plan = plan_halfwidth(c, 0.05)
    assert not plan.reachable and plan.floor > 0.05 and plan.iris_needed > 40


def test_a_shared_target_design_needs_fewer_participants_for_a_difference():
    c = Components(None, 0.6, 0.01, 0.0, 0.05, 0.18, Layout(30, 60, 60.0))
    paired = Shared(participant=0.008, target=0.04, targets_shared=1.0)
    unpaired = dataclasses.replace(paired, targets_shared=0.0)
    need_paired = plan_difference(c, c, paired, 0.08).layout.participants
    plan = plan_difference(c, c, unpaired, 0.08)
    assert need_paired < plan.layout.participants or not plan.reachable
    lay = plan_difference(c, c, paired, 0.08).layout
    assert difference_power(c, c, paired, 0.08, lay) >= 0.8
    fewer = dataclasses.replace(lay, participants=lay.participants - 1)
    assert difference_power(c, c, paired, 0.08, fewer) < 0.8
    # a difference of 0: the conservative CI rejects less often than alpha
    assert difference_power(c, c, paired, 1e-9, lay) < 0.05


@pytest.mark.slow
def test_a_planned_design_reaches_its_half_width_when_simulated():
    scenario = Scenario("plan", participants=30, targets=40, models=1, name_targets=False)
    t = population_components(scenario)
    c = Components(
        None,
        t["mean"],
        t["participant"],
        0.0,
        t["iri"] + t["target"],
        t["residual"],
        Layout(30, 40, 40.0),
    )
    plan = plan_halfwidth(c, 0.075)
    assert plan.reachable
    simulated = dataclasses.replace(scenario, participants=plan.layout.participants)
    rng = np.random.default_rng(5)
    widths = []
    for k in range(60):
        row = alignment(simulate(simulated, rng), n_boot=200, seed=k).iloc[0]
        widths.append((row["ci_high"] - row["ci_low"]) / 2)
    assert np.median(widths) <= 0.075 * 1.02  # Monte Carlo slack of 60 tables


def test_bad_pilots_and_targets_are_refused():
    one = pd.DataFrame({"participant": ["a"] * 4, "item": list("wxyz"), "correct": [1, 0, 1, 1]})
    with pytest.raises(ConfigError, match="at least 2 participants"):
        variance_components(CrossedDesign.of(one))
    c = _components(0.04)
    with pytest.raises(ConfigError, match=r"'halfwidth' parameter of plan_halfwidth.*Got 0\.7"):
        plan_halfwidth(c, 0.7)
    with pytest.raises(ConfigError, match="'power' parameter"):
        plan_difference(c, c, Shared(0.0, 0.0, 0.0), 0.1, power=1.5)
    split = pd.DataFrame(
        {
            "participant": list("aabbccdd"),
            "item": list("wxwxyzyz"),
            "model": list("mmmmnnnn"),
            "correct": [1, 0, 1, 1, 0, 0, 1, 0],
        }
    )
    with pytest.raises(ConfigError, match="share no participant"):
        shared_components(CrossedDesign.of(split, "model"), 0, 1)
    with pytest.raises(ConfigError, match="'per_participant' parameter of Layout"):
        Layout(10, 5, 6.0)


@pytest.fixture
def pilot(tmp_path):
    scenario = Scenario("pilot", participants=12, targets=10, name_targets=False)
    path = tmp_path / "pilot.csv"
    simulate(scenario, np.random.default_rng(0)).to_csv(path, index=False)
    return path


def test_score_prints_the_plan_and_refuses_bad_values(pilot, capsys):
    common = ["score", str(pilot), "--by", "model", "--bootstrap", "50"]
    assert main([*common, "--halfwidth", "0.3"]) == 0
    printed = capsys.readouterr().out.replace("\n", " ")
    assert "m0: variance components (participant" in printed
    assert "+-0.3 needs" in printed and "participants at its 10 IRIs" in printed
    assert (
        main([*common, "--halfwidth", "0.02", "--compare", "model", "--plan-difference", "0.1"])
        == 0
    )
    printed = " ".join(capsys.readouterr().out.split())
    assert "+-0.02 cannot be reached with 10 IRIs at any number of participants" in printed
    assert "m0 vs m1: a difference of 0.1" in printed
    for bad, message in (
        (
            ["--halfwidth", "0.7"],
            "'--halfwidth' parameter of score must be a finite number in (0, 0.5]. Got 0.7; "
            "the closest valid value is 0.5.",
        ),
        (["--plan-difference", "0.1"], "--plan-difference needs --compare COLUMN"),
        (["--compare", "model", "--plan-difference", "0.1", "--power", "2"], "'--power'"),
    ):
        assert main([*common, *bad]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
