"""The trust rule and its baselines on hand-made tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from percalign.errors import ConfigError
from percalign.trust import disagreements, evaluate, human_scores, judge_scores, select_uncertain


def _pred(rows: list[tuple[str, int, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["input_id", "label", "model", "predicted", "confidence"])


def _scores(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["input_id", "model", "source", "alignment", "margin"])
    frame["n"] = 2
    return frame


# three models, four inputs; "a" agrees everywhere, so b, c, d are the disputes.
PRED = _pred(
    [
        ("a", 1, "m1", 1, 0.9),
        ("a", 1, "m2", 1, 0.9),
        ("a", 1, "m3", 1, 0.9),
        ("b", 2, "m1", 2, 0.6),  # m1 right
        ("b", 2, "m2", 5, 0.99),  # m2 wrong, most confident
        ("b", 2, "m3", 5, 0.7),  # majority (m2, m3) wrong
        ("c", 3, "m1", 4, 0.5),
        ("c", 3, "m2", 3, 0.8),  # only m2 right, most confident
        ("c", 3, "m3", 6, 0.6),  # three-way tie for majority
        ("d", 0, "m1", 7, 0.9),
        ("d", 0, "m2", 8, 0.95),
        ("d", 0, "m3", 9, 0.6),  # nobody right
    ]
)


def test_disagreements_keep_input_order():
    assert disagreements(PRED) == ["b", "c", "d"]


def test_baselines_on_hand_made_predictions():
    scores = _scores(
        [(i, m, "judge", 0.5, 0.0) for i in "abcd" for m in ("m1", "m2", "m3")]
    )  # all tied
    per_input, summary = evaluate(PRED, scores)
    acc = summary.set_index("method")["accuracy"]
    # random: 1/3 right on b, 1/3 on c, 0 on d
    assert acc["random"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)
    # max-softmax picks m2 on b (wrong), m2 on c (right), m2 on d (wrong)
    assert acc["max-softmax"] == pytest.approx(1 / 3)
    # best on average over all inputs: m1 2/4, m2 2/4, m3 1/4 -> m1 (first of the tie)
    assert summary.set_index("method").loc["best-on-average", "detail"] == "model m1"
    assert acc["best-on-average"] == pytest.approx(1 / 3)  # right on b only
    # majority: b -> 5 (wrong), c -> 3-way tie containing the truth (1/3), d -> 0
    assert acc["majority"] == pytest.approx((0 + 1 / 3 + 0) / 3)
    assert acc["oracle"] == pytest.approx(2 / 3)
    # a rule that cannot choose scores exactly the random baseline
    assert acc["rule:judge"] == pytest.approx(acc["random"])
    assert list(per_input["input_id"]) == ["b", "c", "d"]


def test_rule_follows_the_most_aligned_model_and_beats_the_baselines():
    right = {"b": "m1", "c": "m2", "d": "m3"}  # on d nobody is right: m3 is most aligned
    scores = _scores(
        [
            (i, m, "judge", 0.9 if right.get(i) == m else 0.1, 0.0)
            for i in "bcd"
            for m in ("m1", "m2", "m3")
        ]
    )
    per_input, summary = evaluate(PRED, scores)
    assert list(per_input["pick:judge"]) == ["m1", "m2", "m3"]
    row = summary.set_index("method").loc["rule:judge"]
    assert row["accuracy"] == pytest.approx(2 / 3)  # equals the oracle here
    assert row["vs random"] == pytest.approx(2 / 3 - 2 / 9)
    assert row["ci"] == "wilson"
    assert row["lo"] < row["accuracy"] < row["hi"]


def test_margin_breaks_ties_and_exact_ties_score_the_mean():
    scores = _scores(
        [
            ("b", "m1", "j", 1.0, 0.3),
            ("b", "m2", "j", 1.0, 0.1),
            ("b", "m3", "j", 0.0, 0.5),
            ("c", "m1", "j", 1.0, 0.2),
            ("c", "m2", "j", 1.0, 0.2),
            ("c", "m3", "j", 0.5, 0.9),
        ]
    )
    per_input, _ = evaluate(PRED, scores)
    rows = per_input.set_index("input_id")
    assert rows.loc["b", "pick:j"] == "m1"
    assert rows.loc["b", "rule:j"] == 1.0
    assert rows.loc["c", "pick:j"] == "m1|m2"
    assert rows.loc["c", "rule:j"] == 0.5  # m1 wrong, m2 right
    assert np.isnan(rows.loc["d", "rule:j"])  # the source did not score d


def test_evaluate_refuses_models_that_always_agree():
    agree = PRED[PRED["input_id"] == "a"]
    with pytest.raises(ConfigError, match="agree on every input"):
        evaluate(agree, _scores([("a", "m1", "j", 1.0, 0.0)]))


def test_missing_columns_are_named():
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['confidence'\]"):
        disagreements(PRED.drop(columns="confidence"))


def test_judge_scores_average_iris_and_use_the_metric_foil():
    judgments = pd.DataFrame(
        {
            "input_id": ["x", "x", "x", "x"],
            "model": ["m1", "m1", "m2", "m2"],
            "judge": "ssim",
            "other_2afc": [True, False, True, True],
            "seed_2afc": [True, True, False, False],
            "d_target": [1.0, 3.0, 1.0, 1.0],
            "d_other": [3.0, 1.0, 3.0, 2.0],
            "d_seed": [2.0, 4.0, 0.5, 0.5],
        }
    )
    other = judge_scores(judgments).set_index("model")
    assert other.loc["m1", "alignment"] == 0.5
    assert other.loc["m1", "margin"] == pytest.approx(0.0)  # (+0.5 - 0.5) / 2
    assert other.loc["m2", "margin"] == pytest.approx((0.5 + 1 / 3) / 2)
    seed = judge_scores(judgments, "seed_2afc").set_index("model")
    assert seed.loc["m2", "alignment"] == 0.0
    with pytest.raises(ConfigError, match="Unknown trust metric"):
        judge_scores(judgments, "matching")


def test_human_scores_match_answers_to_iris_by_hash():
    answers = pd.DataFrame({"query": ["h1", "h1", "h2", "h9"], "correct": [1, 0, 1, 1]})
    iris = pd.DataFrame(
        {"iri_sha256": ["h1", "h2", "h3"], "input_id": ["x", "x", "y"], "model": ["a", "b", "a"]}
    )
    scores = human_scores(answers, iris).set_index("model")
    assert scores.loc["a", "alignment"] == 0.5 and scores.loc["a", "n"] == 2
    assert scores.loc["b", "alignment"] == 1.0
    assert set(scores["source"]) == {"humans"}  # h9 is not an IRI of the analysis: ignored


def test_select_picks_inputs_where_judges_disagree_then_the_closest_calls():
    scores = _scores(
        [
            # judges agree, wide gap: certain
            ("sure", "m1", "j1", 1.0, 0.0),
            ("sure", "m2", "j1", 0.0, 0.0),
            ("sure", "m1", "j2", 1.0, 0.0),
            ("sure", "m2", "j2", 0.0, 0.0),
            # judges agree, narrow gap
            ("close", "m1", "j1", 0.6, 0.0),
            ("close", "m2", "j1", 0.5, 0.0),
            ("close", "m1", "j2", 0.6, 0.0),
            ("close", "m2", "j2", 0.5, 0.0),
            # judges pick different models: least certain
            ("split", "m1", "j1", 1.0, 0.0),
            ("split", "m2", "j1", 0.0, 0.0),
            ("split", "m1", "j2", 0.0, 0.0),
            ("split", "m2", "j2", 1.0, 0.0),
            ("split", "m1", "humans", 1.0, np.nan),  # ignored
            ("split", "m2", "humans", 0.0, np.nan),
        ]
    )
    assert select_uncertain(scores, 2) == ["split", "close"]
    assert select_uncertain(scores, 10) == ["split", "close", "sure"]
    with pytest.raises(ValueError, match="'n' parameter"):
        select_uncertain(scores, 0)
