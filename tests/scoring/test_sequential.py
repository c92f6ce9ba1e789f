"""Sequential decisions: spending boundaries, crossed moments, decisions, allocation
(benchmarks/sequential.py runs the full simulation)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from percalign.errors import ConfigError, UnknownNameError
from percalign.scoring.allocation import allocate, condition_needs, quotas
from percalign.scoring.boundaries import (
    SPENDING,
    crossing_probabilities,
    efficacy_bound,
    futility_bound,
    obrien_fleming,
)
from percalign.scoring.moments import contrast_moments
from percalign.scoring.sequential import Question, SequentialPlan, decide, look, settled
from percalign.scoring.simulate import Scenario, simulate


def _bounds(info, alpha=0.05, spending="obrien-fleming"):
    info = np.asarray(info, dtype=float)
    spend = SPENDING[spending]
    bounds = []
    for k in range(len(info)):
        cumulative = 2 * float(spend(info[k] / info[-1], alpha / 2))
        bounds.append(efficacy_bound(bounds, info[: k + 1], cumulative))
    return np.array(bounds)


def _mvn(info, mean=None):
    info = np.asarray(info, dtype=float)
    cov = np.sqrt(np.minimum.outer(info, info) / np.maximum.outer(info, info))
    return stats.multivariate_normal(np.zeros(len(info)) if mean is None else mean, cov)


def test_obrien_fleming_boundaries_match_published_values():
    # Lan-DeMets O'Brien-Fleming type, two-sided 0.05, five equally spaced looks (the values
    # tabulated by gsDesign, rpact and ldbounds)
    published = [4.8769, 3.3569, 2.6803, 2.2898, 2.0310]
    np.testing.assert_allclose(_bounds([1, 2, 3, 4, 5]), published, atol=2e-3)


@pytest.mark.parametrize(
    ("info", "spending"),
    [
        ([1.0, 2.0, 3.0], "obrien-fleming"),
        ([1.0, 1.6, 1.9, 1.97], "obrien-fleming"),  # information capped by the IRIs
        ([1.0, 3.0, 4.0, 8.0], "pocock"),
    ],
)
def test_boundaries_spend_alpha_by_an_independent_multivariate_normal(info, spending):
    bounds = _bounds(info, spending=spending)
    spend = SPENDING[spending]
    for k in range(1, len(info) + 1):
        c = bounds[:k]
        # P(no |Z_j| >= c_j for j <= k) by scipy's multivariate normal
        none = _mvn(info[:k]).cdf(c, lower_limit=-c)
        assert 1 - none == pytest.approx(2 * float(spend(info[k - 1] / info[-1], 0.025)), abs=5e-4)
    spent = crossing_probabilities(bounds, info).sum()
    assert spent == pytest.approx(0.05, abs=1e-6)


def test_futility_spends_beta_under_the_smallest_difference_of_interest():
    info = np.array([20.0, 40.0])  # 1 / variance; theta 0.5 -> drift sqrt(I) theta
    theta, beta = 0.5, 0.2
    c = _bounds(info)
    b1 = futility_bound([], c[0], info[:1], theta, float(obrien_fleming(0.5, beta)))
    b2 = futility_bound([(b1, c[0])], c[1], info, theta, float(obrien_fleming(1.0, beta)))
    drift = theta * np.sqrt(info)
    first = stats.norm.cdf(b1 - drift[0]) - stats.norm.cdf(-b1 - drift[0])
    assert first == pytest.approx(float(obrien_fleming(0.5, beta)), abs=1e-6)
    mvn = _mvn(info, drift)
    # continued at look 1 (b1 <= |Z1| < c1) and |Z2| < b2, both signs of Z1
    second = mvn.cdf([c[0], b2], lower_limit=[b1, -b2]) + mvn.cdf(
        [-b1, b2], lower_limit=[-c[0], -b2]
    )
    if b2 < c[1]:
        assert first + second == pytest.approx(beta, abs=5e-4)
    else:  # every continuing path is decided at the last look; futility spends at most beta
        assert first + second <= beta + 5e-4


def test_crossed_moments_participant_part_is_the_paired_variance():
    rng = np.random.default_rng(0)
    hits = (rng.random((12, 6)) < 0.6).astype(float)
    condition = np.array([0, 0, 0, 1, 1, 1])
    m = contrast_moments(hits, np.ones_like(hits), condition, np.arange(6), np.array([1.0, -1]))
    per_person = hits[:, :3].mean(axis=1) - hits[:, 3:].mean(axis=1)
    assert float(m.estimate) == pytest.approx(per_person.mean())
    assert float(m.participant) == pytest.approx(per_person.var(ddof=1) / 12)
    assert float(m.variance_at(np.inf)) == pytest.approx(float(m.item))


def test_crossed_moments_match_the_variance_across_simulated_tables():
    # participant, target and IRI effects, paired targets: the mean estimated variance of
    # the difference is within 10% of the variance of the estimates over 400 tables
    rng = np.random.default_rng(1)
    studies, people, targets = 400, 20, 30
    target = np.tile(np.arange(targets), 2)
    condition = np.repeat([0, 1], targets)
    u = rng.normal(0, 0.5, (studies, people, 1))
    v = rng.normal(0, 1.0, (studies, 1, targets))[..., target]
    w = rng.normal(0, 0.7, (studies, 1, 2 * targets))
    hits = (rng.random((studies, people, 2 * targets)) < 1 / (1 + np.exp(-(u + v + w)))) * 1.0
    m = contrast_moments(hits, np.ones_like(hits), condition, target, np.array([1.0, -1]))
    assert m.variance.mean() == pytest.approx(m.estimate.var(), rel=0.10)
    assert (m.item > 0).mean() > 0.9  # the IRIs' part is found


def _table(rates, people=30, targets=20, seed=0):
    """Answers of ``people`` to ``targets`` IRIs per model; model m answers correctly with
    probability ``rates[m]``, the same pattern for every participant (a constructed table)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, rate in enumerate(rates):
        for t in range(targets):
            for p in range(people):
                rows.append((f"p{p}", f"m{m}-{t}", f"t{t}", f"m{m}", int(rng.random() < rate)))
    return pd.DataFrame(rows, columns=["participant", "item", "target", "model", "correct"])


def test_a_large_difference_is_decided_at_the_first_look():
    plan = SequentialPlan((Question("model", levels=("m0", "m1"), difference=0.1),), 60, every=30)
    history = decide(plan, _table([0.95, 0.35]))
    (looks,) = history.values()
    assert looks[-1].decision == "difference"
    assert looks[-1].low > 0.3 and looks[-1].estimate == pytest.approx(0.6, abs=0.08)
    assert settled(history)


def test_equal_models_with_ample_information_are_futile():
    # the same answers for both models' IRIs of each target: no difference, small variance
    one = _table([0.6], people=40, targets=40, seed=3)
    both = pd.concat([one, one.assign(model="m1", item=one["item"].str.replace("m0", "m1"))])
    plan = SequentialPlan((Question("model", difference=0.1),), 80, every=40)
    (looks,) = decide(plan, both).values()
    assert looks[-1].decision == "futile"
    assert abs(looks[-1].estimate) < 1e-12


def test_a_settled_question_is_not_revisited():
    plan = SequentialPlan((Question("model", difference=0.1),), 60, every=30)
    first = decide(plan, _table([0.95, 0.35]))
    again = decide(plan, _table([0.5, 0.5], seed=9), first)
    assert again == first


def test_halfwidth_reached_or_unreachable_with_these_iris():
    # consistent IRIs: the half-width is reached
    plan = SequentialPlan((Question("model", "halfwidth", difference=0.08),), 60, every=30)
    (looks,) = decide(plan, _table([0.7], targets=60, seed=1)).values()
    assert looks[-1].decision == "reached"
    # 6 IRIs, half always right and half always wrong: the IRIs' floor is far wider than 0.05
    rows = [(f"p{p}", f"i{i}", "m0", int(i < 3)) for i in range(6) for p in range(30)]
    table = pd.DataFrame(rows, columns=["participant", "item", "model", "correct"])
    plan = SequentialPlan((Question("model", "halfwidth", difference=0.05),), 200, every=30)
    (looks,) = decide(plan, table).values()
    assert looks[-1].decision == "unreachable"
    assert looks[-1].ceiling > 0.05


def test_repeated_looks_narrow_the_boundary_and_keep_undecided_in_between():
    contrast = Question("model", levels=("a", "b")).contrasts(("a", "b"))[0]
    history = ()
    for n in (10, 20, 30):
        m = contrast_moments(
            np.tile([[1.0, 0.0], [0.0, 1.0]], (n // 2, 1)),
            np.ones((n, 2)),
            np.array([0, 1]),
            np.array([0, 1]),
            contrast.weights,
        )
        history = (*history, look(contrast, history, m, budget=30))
    assert [h.participants for h in history] == [10, 20, 30]
    assert history[0].efficacy > history[1].efficacy > history[2].efficacy
    assert history[-1].fraction == 1.0


def test_needs_and_allocation_ignore_which_way_answers_went():
    rng = np.random.default_rng(4)
    table = simulate(
        Scenario("x", participants=12, targets=8, models=3, iri_sd=1.0, answered=0.6), rng
    )
    flipped = table.assign(correct=1 - table["correct"])
    plan = SequentialPlan((Question("model", difference=0.1),), 60, every=6)
    need = condition_needs(plan, table, {}, "model")
    need_flipped = condition_needs(plan, flipped, {}, "model")
    assert need_flipped == pytest.approx(need)
    items = table.drop_duplicates("item").sort_values("item")
    condition = items["model"].str[1:].astype(int).to_numpy()
    judged = table.groupby("item").size().reindex(items["item"]).to_numpy()
    seen = np.zeros(len(items), bool)

    def chosen(needs):
        return allocate(judged, condition, np.array(list(needs.values())), seen, 5, 2).tolist()

    assert chosen(need_flipped) == chosen(need)
    # the needs differ by model, and answers that are less uncertain need less
    assert len(set(np.round(list(need.values()), 12))) == 3
    certain = condition_needs(plan, table.assign(correct=1), {}, "model")
    assert certain == {"m0": 0.0, "m1": 0.0, "m2": 0.0}


def test_settled_questions_stop_drawing_answers():
    plan = SequentialPlan(
        (
            Question("model", levels=("m0", "m1"), difference=0.1),
            Question("model", levels=("m1", "m2"), difference=0.1),
        ),
        60,
        every=30,
    )
    table = _table([0.95, 0.35, 0.5], seed=2)
    history = decide(plan, table)
    assert history["model: m0 - m1"][-1].decision == "difference"
    need = condition_needs(plan, table, history, "model")
    if history["model: m1 - m2"][-1].decision == "undecided":
        assert need["m0"] == 0.0 and need["m1"] > 0 and need["m2"] > 0
    else:
        assert need == {"m0": 0.0, "m1": 0.0, "m2": 0.0}


def test_allocation_serves_the_minimum_first_then_splits_by_need():
    judged = np.array([5, 1, 0, 9, 9, 9, 4, 4])
    condition = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    seen = np.array([False, False, False, True, False, False, False, False])
    chosen = allocate(judged, condition, np.array([0.0, 1.0]), seen, slots=4, minimum=2)
    assert chosen[:2].tolist() == [2, 1]  # below the minimum, fewest first
    assert sorted(chosen[2:].tolist()) == [6, 7]  # the undecided condition, least judged
    assert 3 not in chosen and len(set(chosen.tolist())) == 4
    # a condition short of unseen items passes its slots on
    short = allocate(judged, condition, np.array([1.0, 0.0]), seen, slots=5, minimum=0)
    assert set(short.tolist()) >= {0, 1, 2} and 3 not in short
    assert quotas(np.array([1.0, 1.0, 2.0]), 8).tolist() == [2, 2, 4]
    assert quotas(np.zeros(3), 7).sum() == 7
    with pytest.raises(ConfigError, match="only 7 are left unseen"):
        allocate(judged, condition, np.ones(2), seen, slots=8, minimum=2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Question(kind="compar"), "did you mean 'compare'"),
        (lambda: Question(levels=("a", "b", "c")), "names two levels"),
        (lambda: Question(power=1.0), "'power'"),
        (lambda: Question(alpha=0.0), "'alpha'"),
        (lambda: Question(difference=0.0), "'difference'"),
        (lambda: Question(spending="pocok"), "did you mean 'pocock'"),
        (lambda: SequentialPlan((Question(),), budget=8, every=10), "smaller than the first look"),
        (lambda: SequentialPlan((Question(),), budget=60), "exactly one"),
        (lambda: SequentialPlan((Question(),), 60, every=5, fractions=(0.5,)), "exactly one"),
        (lambda: SequentialPlan((Question(),), 60, fractions=(0.5, 0.3)), "must increase"),
        (lambda: SequentialPlan((Question(),), 20, fractions=(0.05, 1.0)), "at least 2"),
        (lambda: SequentialPlan((), 60, every=10), "at least one question"),
    ],
)
def test_bad_questions_and_plans_are_refused(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_question_on_a_missing_column_or_level_names_the_closest():
    table = _table([0.6, 0.5])
    plan = SequentialPlan((Question("modle"),), 60, every=30)
    with pytest.raises(UnknownNameError, match="Did you mean 'model'"):
        decide(plan, table)
    plan = SequentialPlan((Question("model", levels=("m0", "m9")),), 60, every=30)
    with pytest.raises(UnknownNameError, match="'m9'"):
        decide(plan, table)


@pytest.mark.slow
def test_null_studies_keep_the_false_positive_rate_over_repeated_looks():
    # 300 null studies: 2 models x 24 paired targets, participant / target / IRI effects,
    # every participant judges every IRI, looks every 5 up to 30 participants
    rng = np.random.default_rng(7)
    studies, people, targets = 300, 30, 24
    target = np.tile(np.arange(targets), 2)
    condition = np.repeat([0, 1], targets)
    u = rng.normal(0, 0.5, (studies, people, 1))
    v = rng.normal(0, 1.0, (studies, 1, targets))[..., target]
    w = rng.normal(0, 0.6, (studies, 1, 2 * targets))
    hits = rng.random((studies, people, 2 * targets)) < 1 / (1 + np.exp(-(0.4 + u + v + w)))
    hits = hits.astype(float)
    contrast = Question("model", levels=("a", "b"), difference=0.1).contrasts(("a", "b"))[0]
    found = 0
    for s in range(studies):
        history = ()
        for n in range(5, people + 1, 5):
            m = contrast_moments(
                hits[s, :n], np.ones_like(hits[s, :n]), condition, target, contrast.weights
            )
            history = (*history, look(contrast, history, m, budget=people))
            if history[-1].decision != "undecided":
                break
        found += history[-1].decision == "difference"
    assert found / studies <= 0.05 + 0.05
