"""Sources of alignment (judges, people, simulated participants) and the confidence statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from percalign.errors import ConfigError
from percalign.trust import answer_source, human_scores, judge_scores, source_label, valid_judgments
from percalign.trust.confidence import _aucs, compare_confidence, cross_validate, weighted_auc


def test_only_people_platforms_are_humans_and_bots_are_bots():
    for platform in ("prolific", "mturk", "link"):
        assert answer_source(platform) == "humans"
    assert answer_source("bot") == "bots"
    with pytest.raises(ConfigError, match="neither from people"):
        answer_source("crowdflower")
    assert source_label("bots") == "simulated participants (bots)"
    with pytest.raises(ConfigError, match="Unknown score source"):
        source_label("ssim")


def test_human_scores_keep_people_and_bots_apart():
    answers = pd.DataFrame(
        {
            "query": ["h1", "h1", "h1", "h2", "h9"],
            "correct": [1, 0, 1, 1, 1],
            "platform": ["prolific", "bot", "link", "bot", "prolific"],
        }
    )
    iris = pd.DataFrame(
        {"iri_sha256": ["h1", "h2", "h3"], "input_id": ["x", "x", "y"], "model": ["a", "b", "a"]}
    )
    scores = human_scores(answers, iris).set_index(["model", "source"])
    assert scores.loc[("a", "humans"), "alignment"] == 1.0
    assert scores.loc[("a", "humans"), "n"] == 2  # prolific + link
    assert scores.loc[("a", "bots"), "alignment"] == 0.0
    assert scores.loc[("b", "bots"), "n"] == 1
    assert ("b", "humans") not in scores.index  # bot answers never appear as humans
    # h9 is not an IRI of the analysis: ignored; Wilson interval against statsmodels
    lo, hi = proportion_confint(2, 2, method="wilson")
    assert scores.loc[("a", "humans"), "lo"] == pytest.approx(lo)
    assert scores.loc[("a", "humans"), "hi"] == pytest.approx(hi)


def _judgments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "input_id": ["x", "x", "x", "x"],
            "model": ["m1", "m1", "m2", "m2"],
            "iri": ["i0", "i1", "i0", "i1"],
            "seed_type": ["image", "super-noise", "image", "super-noise"],
            "valid": [True, True, True, False],
            "judge": "ssim",
            "other_2afc": [True, False, True, True],
            "seed_2afc": [True, True, False, False],
            "d_target": [1.0, 3.0, 1.0, 1.0],
            "d_other": [3.0, 1.0, 3.0, 2.0],
            "d_seed": [2.0, 4.0, 0.5, 0.5],
        }
    )


def test_judge_scores_average_iris_and_use_the_metric_foil():
    judgments = _judgments()
    other = judge_scores(judgments).set_index("model")
    assert set(other["source"]) == {"judge:ssim"}
    assert other.loc["m1", "alignment"] == 0.5 and other.loc["m1", "n"] == 2
    assert other.loc["m1", "margin"] == pytest.approx(0.0)  # (+0.5 - 0.5) / 2
    assert other.loc["m2", "margin"] == pytest.approx((0.5 + 1 / 3) / 2)
    margins = np.array([0.5, 1 / 3])
    assert other.loc["m2", "margin_se"] == pytest.approx(margins.std(ddof=1) / np.sqrt(2))
    seed = judge_scores(judgments, "seed_2afc").set_index("model")
    assert seed.loc["m2", "alignment"] == 0.0
    with pytest.raises(ConfigError, match="Unknown trust metric"):
        judge_scores(judgments, "matching")


def test_invalid_iris_are_dropped_and_counted():
    two_judges = pd.concat([_judgments(), _judgments().assign(judge="pixel")])
    kept, counts = valid_judgments(two_judges)
    assert len(kept) == 6
    table = counts.set_index(["model", "seed_type"])
    assert table.loc[("m2", "super-noise"), "dropped"] == 1  # counted once, not per judge
    assert table["iris"].sum() == 4 and table["dropped"].sum() == 1
    unflagged = _judgments().assign(valid=None)
    assert len(valid_judgments(unflagged)[0]) == 4  # no validity null: nothing to drop


def test_weighted_auc_matches_sklearn_on_repeated_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    score = np.round(rng.normal(size=40) + y, 1)  # with ties
    weights = rng.integers(0, 3, size=(5, 40))
    ours = weighted_auc(y, score, weights)
    for w, value in zip(weights, ours, strict=True):
        rows = np.repeat(np.arange(40), w)
        assert value == pytest.approx(roc_auc_score(y[rows], score[rows]))
    assert np.isnan(weighted_auc(np.ones(3), np.arange(3.0), np.ones((1, 3))))[0]
    # the batched form: one score array per weighting
    scores = np.round(rng.normal(size=(5, 40)) + y, 1)
    batched = _aucs(y, scores, weights)
    for s, w, value in zip(scores, weights, batched, strict=True):
        assert value == pytest.approx(weighted_auc(y, s, w[None, :])[0])


def test_refit_intervals_cover_the_point_and_the_difference_is_paired():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(100), 3)
    y = rng.integers(0, 2, 300)
    features = pd.DataFrame({"confidence": y + rng.normal(0, 0.8, 300), "alignment": 0.5})
    models = np.tile(["a", "b", "c"], 100)
    alone, both, stats = compare_confidence(features, y, groups, models, n_boot=200)
    assert stats["auc_confidence"] == pytest.approx(roc_auc_score(y, alone.probability))
    assert stats["auc_confidence_lo"] < stats["auc_confidence"] < stats["auc_confidence_hi"]
    # a constant alignment adds nothing in any resample: the paired gains are exactly zero
    np.testing.assert_allclose(both.probability, alone.probability)
    for measure in ("auc", "accuracy"):
        assert [stats[f"{measure}_gain{e}"] for e in ("", "_lo", "_hi")] == [0.0, 0.0, 0.0]


def test_cross_validation_is_out_of_fold_by_group():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(30), 2)
    x = pd.DataFrame({"f": rng.normal(size=60)})
    y = (x["f"] + rng.normal(0, 0.5, 60) > 0).astype(int).to_numpy()
    fit = cross_validate(x, y, groups, folds=5)
    assert fit.folds == 5 and fit.coefficients["f"] > 0
    assert roc_auc_score(y, fit.probability) > 0.75
    constant = cross_validate(x, np.ones(60, dtype=int), groups)  # nothing to learn
    assert np.all(fit.probability > 0) and np.all(constant.probability == 1.0)
