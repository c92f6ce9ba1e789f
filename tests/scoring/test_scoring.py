"""Scoring statistics against reference implementations and known truths."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percalign.errors import ConfigError, InputShapeError
from percalign.scoring import (
    alignment,
    compare,
    fleiss_kappa,
    holm,
    krippendorff_alpha,
    noise_ceiling,
    vote_fractions,
    wilson,
)


def _simulated(
    true_alignment: dict[str, float],
    participants=30,
    items=20,
    seed=0,
    participant_sd=0.3,
    item_sd=0.5,
):
    """A crossed study: every participant judges every item of every model once."""
    rng = np.random.default_rng(seed)
    rows = []
    p_eff = rng.normal(0, participant_sd, participants)
    for model, truth in true_alignment.items():
        i_eff = rng.normal(0, item_sd, items)
        # logits centred so that the population-average alignment is close to ``truth``
        base = np.log(truth / (1 - truth))
        for p in range(participants):
            prob = 1 / (1 + np.exp(-(base + p_eff[p] + i_eff)))
            hits = rng.random(items) < prob
            for i in range(items):
                rows.append(
                    {
                        "participant": f"p{p}",
                        "item": f"{model}-i{i}",
                        "model": model,
                        "correct": int(hits[i]),
                        "choice": int(hits[i]),
                    }
                )
    return pd.DataFrame(rows)


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in [(0, 10), (3, 10), (50, 100), (99, 100)]:
        ref = proportion_confint(k, n, method="wilson")
        assert wilson(k, n) == pytest.approx(ref, abs=1e-12)


def test_wilson_matches_scipy():
    from scipy.stats import binomtest

    for k, n, level in [(0, 10, 0.95), (3, 10, 0.9), (50, 100, 0.99), (99, 100, 0.95)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        assert wilson(k, n, level) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_alignment_point_estimate_and_test_against_chance():
    t = _simulated({"a": 0.7, "b": 0.55}, participants=10, items=8)
    out = alignment(t, by=["model"], n_boot=300)
    for _, row in out.iterrows():
        sub = t[t["model"] == row["model"]]
        assert row["alignment"] == pytest.approx(sub["correct"].mean())
        assert row["ci_low"] <= row["alignment"] <= row["ci_high"]
        assert row["participants"] == 10 and row["items"] == 8
        # the test against chance inverts the same interval
        assert (row["p_chance"] < 0.05) == (row["ci_low"] > 0.5 or row["ci_high"] < 0.5)
    assert out["p_chance_holm"].tolist() == pytest.approx(holm(out["p_chance"]).tolist())


def test_percentile_p_inverts_the_percentile_interval():
    from percalign.scoring import percentile_p

    reps = np.random.default_rng(0).normal(0.3, 0.1, 4000)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    for null in (lo - 0.01, lo + 0.01, 0.3, hi - 0.01, hi + 0.01):
        assert (percentile_p(reps, null) < 0.05) == (not lo <= null <= hi)
    assert percentile_p(reps, 0.3) > 0.9
    # 1 of 4000 replicates below 0: 2 x (1 + 1) / 4001
    assert percentile_p(np.r_[-1.0, np.ones(3999)], 0.0) == pytest.approx(4 / 4001)


def test_crossed_bootstrap_is_wider_than_wilson_when_items_vary():
    t = _simulated({"a": 0.7}, participants=40, items=15, item_sd=1.0)
    row = alignment(t, n_boot=1000).iloc[0]
    w_lo, w_hi = wilson(int(t["correct"].sum()), len(t))
    assert row["ci_high"] - row["ci_low"] > w_hi - w_lo
    assert row["design_effect"] > 1.5


def test_design_effect_is_the_bootstrap_variance_over_the_binomial_one():
    t = _simulated({"a": 0.6}, participants=12, items=10, seed=4)
    row = alignment(t, n_boot=400, seed=3).iloc[0]
    from percalign.scoring import CrossedDesign

    reps = CrossedDesign.of(t).replicates(400, 3)[:, 0]
    p = t["correct"].mean()
    assert row["design_effect"] == pytest.approx(reps.var() / (p * (1 - p) / len(t)))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 1)), min_size=4, max_size=60
    ),
    st.randoms(use_true_random=False),
)
def test_row_order_does_not_matter(rows, rnd):
    t = pd.DataFrame(rows, columns=["participant", "item", "correct"])
    shuffled = t.sample(frac=1.0, random_state=rnd.randint(0, 10**6)).reset_index(drop=True)
    a, b = alignment(t, n_boot=50), alignment(shuffled, n_boot=50)
    assert a["alignment"].iloc[0] == pytest.approx(b["alignment"].iloc[0])
    assert a["ci_low"].iloc[0] == pytest.approx(b["ci_low"].iloc[0])
    assert a["ci_low"].iloc[0] <= a["alignment"].iloc[0] + 1e-12 <= a["ci_high"].iloc[0] + 2e-12


def test_more_data_narrows_the_interval():
    small = alignment(_simulated({"a": 0.7}, participants=10, items=10), n_boot=1000).iloc[0]
    large = alignment(_simulated({"a": 0.7}, participants=80, items=40), n_boot=1000).iloc[0]
    assert large["ci_high"] - large["ci_low"] < small["ci_high"] - small["ci_low"]


@pytest.mark.slow
def test_crossed_bootstrap_covers_the_truth_at_about_its_nominal_rate():
    """100 simulated studies with known per-model alignment (participants and items vary);
    the Wilson interval, which ignores that answers cluster, on the same studies."""
    truth = 0.7
    logit0 = np.log(truth / (1 - truth))
    # the estimand: mean success probability over the populations of participants and items
    draws = np.random.default_rng(0).normal(0, np.sqrt(0.3**2 + 0.5**2), 1_000_000)
    population_truth = float(np.mean(1 / (1 + np.exp(-(logit0 + draws)))))
    hits, wilson_hits, total = 0, 0, 0
    for s in range(100):
        rng = np.random.default_rng(1000 + s)
        participants, items = 25, 20
        p_eff = rng.normal(0, 0.3, participants)
        i_eff = rng.normal(0, 0.5, items)
        prob = 1 / (1 + np.exp(-(logit0 + p_eff[:, None] + i_eff[None, :])))
        answers = rng.random(prob.shape) < prob
        t = pd.DataFrame(
            {
                "participant": np.repeat(np.arange(participants), items),
                "item": np.tile(np.arange(items), participants),
                "correct": answers.ravel().astype(int),
            }
        )
        row = alignment(t, n_boot=400, seed=s).iloc[0]
        hits += row["ci_low"] <= population_truth <= row["ci_high"]
        w_lo, w_hi = wilson(int(t["correct"].sum()), len(t))
        wilson_hits += w_lo <= population_truth <= w_hi
        total += 1
    # found: the crossed bootstrap covered the truth in 97 of 100, Wilson in 85 (the README's
    # figures); Wilson treats the answers as independent, so it is too narrow here
    assert 0.85 <= hits / total <= 0.995, hits / total
    assert wilson_hits / total <= 0.9 and wilson_hits < hits, (wilson_hits, hits)


def test_fleiss_kappa_matches_statsmodels():
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as ref

    t = _simulated({"a": 0.6}, participants=7, items=25, seed=3)
    table, _ = aggregate_raters(
        t.pivot(index="item", columns="participant", values="choice").to_numpy()
    )
    assert fleiss_kappa(t) == pytest.approx(ref(table, method="fleiss"), abs=1e-10)


def test_fleiss_kappa_refuses_unbalanced_designs():
    t = _simulated({"a": 0.6}, participants=4, items=5, seed=3)
    with pytest.raises(InputShapeError, match="krippendorff_alpha") as e:
        fleiss_kappa(t.iloc[1:])  # one item now has 3 raters, the others 4
    assert isinstance(e.value, ValueError)


def test_fleiss_kappa_of_the_textbook_example():
    # 10 subjects, 14 raters, 5 categories: the worked example of Fleiss' kappa, 0.210
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    t = pd.DataFrame(
        [
            {"item": i, "choice": c}
            for i, row in enumerate(counts)
            for c, n in enumerate(row)
            for _ in range(n)
        ]
    )
    assert fleiss_kappa(t) == pytest.approx(0.210, abs=5e-4)


def test_krippendorff_alpha_matches_the_reference_package():
    import krippendorff

    t = _simulated({"a": 0.6}, participants=6, items=30, seed=4)
    t = t.drop(index=t.sample(frac=0.2, random_state=0).index)  # unbalanced
    matrix = t.pivot(index="participant", columns="item", values="choice").to_numpy(float)
    ref = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert krippendorff_alpha(t) == pytest.approx(ref, abs=1e-10)


def test_vote_fractions_sum_to_one():
    t = _simulated({"a": 0.6}, participants=5, items=4)
    assert np.allclose(vote_fractions(t).sum(axis=1), 1.0)


def test_noise_ceiling_is_high_for_consistent_items_and_low_for_noise():
    consistent = _simulated({"a": 0.6}, participants=40, items=30, item_sd=2.0, seed=5)
    noise = _simulated({"a": 0.6}, participants=40, items=30, item_sd=0.0, seed=6)
    assert noise_ceiling(consistent, n_splits=50)["reliability"] > 0.7
    assert noise_ceiling(noise, n_splits=50)["reliability"] < 0.4


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    # by hand: sorted 0.005, 0.01, 0.03, 0.04, 0.5 times 5, 4, 3, 2, 1 -> 0.025, 0.04, 0.09,
    # 0.08 (raised to 0.09: the adjusted values never decrease), 0.5; back in input order
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_compare_finds_a_real_difference_and_not_a_null_one():
    t = _simulated({"robust": 0.8, "standard": 0.5, "standard2": 0.5}, participants=30, items=20)
    # the same participants judge every model; each model has its own items
    out = compare(t, "model", n_boot=2000).set_index(["a", "b"])
    real = out.loc[("robust", "standard")]
    assert real["ci_low"] > 0 and real["p_holm"] < 0.01
    null = out.loc[("standard", "standard2")]
    assert null["ci_low"] < 0 < null["ci_high"] and null["p_holm"] > 0.05


def test_bad_tables():
    with pytest.raises(ConfigError, match="lacks column"):
        alignment(pd.DataFrame({"participant": [1], "item": [1]}))
    with pytest.raises(ConfigError, match="lacks column"):
        alignment(pd.DataFrame({"participant": [1], "item": [1], "correct": [1]}), by=["model"])
    with pytest.raises(InputShapeError, match="0/1"):
        alignment(pd.DataFrame({"participant": [1], "item": [1], "correct": [2]}))


def test_exclusions_are_applied_and_reported_rule_by_rule():
    from percalign.scoring import Exclusions, apply_exclusions

    rows = []
    for p, (catch_ok, n_trials, rt) in {
        "good": (1, 10, 900),
        "careless": (0, 10, 900),
        "quitter": (1, 2, 900),
        "rusher": (1, 10, 100),
        "catch-spotter": (1, 10, 900),
    }.items():
        # the catch-spotter claims 800 ms on its catch trial; the server measured 5 ms
        server = 5.0 if p == "catch-spotter" else None
        rows.append(
            {
                "participant": p,
                "item": "catch",
                "correct": catch_ok,
                "is_catch": True,
                "rt_ms": 800,
                "server_rt_ms": server,
            }
        )
        rows += [
            {"participant": p, "item": f"i{i}", "correct": 1, "is_catch": False, "rt_ms": rt}
            for i in range(n_trials)
        ]
    rows.append(
        {
            "participant": "unfinished",
            "item": "i0",
            "correct": 1,
            "is_catch": False,
            "rt_ms": 900,
            "status": "active",
        }
    )
    for row in rows:
        row.setdefault("status", "completed")
    kept, report = apply_exclusions(pd.DataFrame(rows), Exclusions(min_answers=5))
    assert set(kept["participant"]) == {"good"} and not kept["is_catch"].any()
    assert report["rule"].tolist()[1] == "session not finished"
    assert report["participants"].tolist() == [1, 1, 1, 1, 1]
    assert report["answers"].tolist() == [11, 1, 3, 11, 11]
    assert report["rule"].tolist()[4] == "over 20% of catch trials faster than 600 ms"
    with pytest.raises(ConfigError, match="'min_catch_accuracy' parameter"):
        Exclusions(min_catch_accuracy=2.0)


def test_side_bias_and_too_fast_answers_timed_from_the_images_are_excluded():
    from percalign.scoring import Exclusions, apply_exclusions

    def person(name, choices, rt, server):
        return [
            {
                "participant": name,
                "item": f"i{i}",
                "correct": c == i % 2,
                "is_catch": False,
                "choice": c,
                "rt_ms": rt,
                "server_rt_ms": server,
                "status": "completed",
            }
            for i, c in enumerate(choices)
        ]

    rows = (
        person("attentive", [i % 2 for i in range(12)], 900, 1000)
        + person("lefty", [0] * 12, 900, 1000)
        + person("almost-lefty", [0] * 10 + [1] * 2, 900, 1000)  # 83%: kept
        + person("short-lefty", [0] * 9, 900, 1000)  # under 10 answers: the rule says nothing
        # presses 450 ms after the images showed; their transfer took the server's 1500 ms
        + person("quick-look", [i % 2 for i in range(12)], 450, 1500)
        # claims 5 s, but the server saw the answer 420 ms after serving the trial
        + person("masher", [i % 2 for i in range(12)], 5000, 420)
    )
    kept, report = apply_exclusions(pd.DataFrame(rows), Exclusions())
    assert set(kept["participant"]) == {"attentive", "almost-lefty", "short-lefty"}
    by_rule = dict(zip(report["rule"], report["participants"], strict=True))
    assert by_rule["over 20% of answers faster than 600 ms"] == 2
    assert by_rule["over 90% of at least 10 answers on one side"] == 1
    with pytest.raises(ConfigError, match="'max_side_share' parameter"):
        Exclusions(max_side_share=1.5)
    with pytest.raises(ConfigError, match="'min_side_trials' parameter"):
        Exclusions(min_side_trials=0)


def test_judge_agreement_by_hand_with_a_tie():
    from sklearn.metrics import cohen_kappa_score

    from percalign.scoring import judge_agreement

    # four people per item; item c splits 2-2 (a tie, left out of the majority and kappa)
    votes = {"a": [1, 1, 1, 0], "b": [1, 0, 0, 0], "c": [1, 1, 0, 0], "d": [0, 0, 0, 0]}
    humans = pd.DataFrame(
        [{"item": i, "correct": v} for i, answers in votes.items() for v in answers]
    )
    judge = pd.DataFrame({"item": list("abcd"), "correct": [1, 1, 0, 0]})
    out = judge_agreement(humans, judge)
    # shares 3/4, 1/4, 1/2, 0; the judge's answers were given by 3/4, 1/4, 1/2 and 4/4
    assert out["expected"] == pytest.approx((0.75 + 0.25 + 0.5 + 1.0) / 4)  # 0.625
    # p^2 + (1-p)^2: 0.625, 0.625, 0.5, 1
    assert out["ceiling"] == pytest.approx(2.75 / 4)
    assert out["normalized"] == pytest.approx(0.625 / 0.6875)  # 10/11
    # majorities a=1, b=0, d=0 against the judge's 1, 1, 0
    assert out["majority"] == pytest.approx(2 / 3)
    assert out["kappa"] == pytest.approx(0.4)  # (2/3 - 4/9) / (1 - 4/9)
    assert out["kappa"] == pytest.approx(cohen_kappa_score([1, 0, 0], [1, 1, 0]))
    assert out["items"] == 4


def test_judge_agreement_against_references():
    from scipy.stats import kendalltau
    from sklearn.metrics import cohen_kappa_score

    from percalign.scoring import judge_agreement, ranking_agreement

    rng = np.random.default_rng(7)
    share = rng.random(40)
    humans = pd.DataFrame(
        [{"item": i, "correct": int(k < round(share[i] * 9))} for i in range(40) for k in range(9)]
    )
    judge = pd.DataFrame({"item": range(40), "correct": (rng.random(40) < share).astype(int)})
    out = judge_agreement(humans, judge)  # 9 raters per item: no ties here
    majority = (humans.groupby("item")["correct"].mean() > 0.5).astype(int)
    assert out["majority"] == pytest.approx((majority == judge["correct"]).mean())
    assert out["kappa"] == pytest.approx(cohen_kappa_score(majority, judge["correct"]))
    h = pd.Series([0.1, 0.5, 0.7, 0.9], index=list("abcd"))
    j = pd.Series([0.2, 0.3, 0.8, 0.6], index=list("abcd"))
    rank = ranking_agreement(h, j, n_boot=200)
    assert rank["tau"] == pytest.approx(kendalltau(h, j).statistic)
    assert rank["ci_low"] <= rank["tau"] <= rank["ci_high"]
