"""The trust rules and their baselines on hand-made tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from percalign.errors import ConfigError
from percalign.trust import disagreements, evaluate, select_uncertain, standardize


def _pred(rows: list[tuple[str, int, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["input_id", "label", "model", "predicted", "confidence"])


def _scores(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["input_id", "model", "source", "alignment", "margin"])
    frame["source"] = "judge:" + frame["source"]
    frame["n"] = 4
    frame["lo"], frame["hi"], frame["margin_se"] = 0.0, 1.0, 0.1
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
    per_input, summary, _ = evaluate(PRED, scores)
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
    assert acc["absolute:judge:judge"] == pytest.approx(acc["random"])
    assert acc["standardized:judge:judge"] == pytest.approx(acc["random"])
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
    per_input, summary, _ = evaluate(PRED, scores)
    assert list(per_input["pick:absolute:judge:judge"]) == ["m1", "m2", "m3"]
    row = summary.set_index("method").loc["absolute:judge:judge"]
    assert row["accuracy"] == pytest.approx(2 / 3)  # equals the oracle here
    assert row["vs random"] == pytest.approx(2 / 3 - 2 / 9)
    assert row["ci"] == "wilson"
    assert row["lo"] < row["accuracy"] < row["hi"]


def test_the_verdict_names_every_baseline_and_the_selection_of_the_best_rule():
    from percalign.trust import verdict

    right = {"b": "m1", "c": "m2", "d": "m3"}
    scores = _scores(
        [
            (i, m, "judge", 0.9 if right.get(i) == m else 0.1, 0.0)
            for i in "bcd"
            for m in ("m1", "m2", "m3")
        ]
    )
    _, summary, _ = evaluate(PRED, scores)
    text = verdict(summary, pd.DataFrame())
    rules = summary[summary["source"] != ""]
    best = rules.sort_values("accuracy", ascending=False, kind="stable").iloc[0]
    n = len(rules)
    assert n >= 2 and text.startswith(
        f"On 3 disputed inputs the most accurate of {n} alignment rules, {best['method']}"
    )
    for what in ("the most confident model", "the model best on average", "random"):
        assert what in text
    assert f"the best of {n} rules on the same inputs, so these intervals are optimistic" in text
    one = summary[(summary["source"] == "") | (summary["method"] == best["method"])]
    assert "optimistic" not in verdict(one, pd.DataFrame())


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
    per_input, _, _ = evaluate(PRED, scores)
    rows = per_input.set_index("input_id")
    assert rows.loc["b", "pick:absolute:judge:j"] == "m1"
    assert rows.loc["b", "absolute:judge:j"] == 1.0
    assert rows.loc["c", "pick:absolute:judge:j"] == "m1|m2"
    assert rows.loc["c", "absolute:judge:j"] == 0.5  # m1 wrong, m2 right
    assert np.isnan(rows.loc["d", "absolute:judge:j"])  # the source did not score d


def test_evaluate_refuses_models_that_always_agree():
    agree = PRED[PRED["input_id"] == "a"]
    with pytest.raises(ConfigError, match="agree on every input"):
        evaluate(agree, _scores([("a", "m1", "j", 1.0, 0.0)]))


def test_missing_columns_are_named():
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['confidence'\]"):
        disagreements(PRED.drop(columns="confidence"))


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
        ]
    )
    people = pd.DataFrame(
        {"input_id": "split", "model": ["m1", "m2"], "source": "humans", "alignment": [1.0, 0]}
    )
    scores = pd.concat(
        [scores, people.assign(lo=0.0, hi=1.0, margin=np.nan, margin_se=np.nan, n=3)]
    )
    assert select_uncertain(scores, 2) == ["split", "close"]
    assert select_uncertain(scores, 10) == ["split", "close", "sure"]
    with pytest.raises(ValueError, match="'n' parameter"):
        select_uncertain(scores, 0)


def test_standardized_rule_follows_the_input_not_the_model():
    """m1 is the aligned model on average; on input x, m2 is far above its usual level."""
    rows = []
    for i in range(8):
        rows.append((f"i{i}", "m1", "j", 0.9, 0.0))
        rows.append((f"i{i}", "m2", "j", 0.1, 0.0))
    rows += [("x", "m1", "j", 0.8, 0.0), ("x", "m2", "j", 0.6, 0.0)]
    z = standardize(_scores(rows)).set_index(["input_id", "model"])
    assert z.loc[("x", "m2"), "z_alignment"] > 2
    assert z.loc[("x", "m1"), "z_alignment"] < -2
    assert z.loc[("i0", "m1"), "z_margin"] == 0.0  # a margin that never varies
    pred = _pred(
        [(f"i{i}", 1, m, 1 if m == "m1" else 2, 0.9) for i in range(8) for m in ("m1", "m2")]
        + [("x", 3, "m1", 4, 0.9), ("x", 3, "m2", 3, 0.9)]
    )
    per_input, _, _ = evaluate(pred, _scores(rows))
    row = per_input.set_index("input_id").loc["x"]
    assert row["pick:absolute:judge:j"] == "m1" and row["absolute:judge:j"] == 0.0
    assert row["pick:standardized:judge:j"] == "m2" and row["standardized:judge:j"] == 1.0


def _synthetic(n: int, informative: bool, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three models on ``n`` inputs; confidence carries no information; alignment does (or not)."""
    rng = np.random.default_rng(seed)
    preds, scores = [], []
    for i in range(n):
        label = int(rng.integers(10))
        rights = rng.random(3) < 0.5
        rights[0] = not rights[1:].all() if rights.all() else rights[0]  # always disputed
        for m, right in zip(("m1", "m2", "m3"), rights, strict=True):
            guess = label if right else (label + 1 + int(rng.integers(9))) % 10
            preds.append((f"i{i}", label, m, guess, float(rng.uniform(0.3, 1.0))))
            level = (0.8 if right else 0.2) if informative else 0.5
            a = float(np.clip(level + rng.normal(0, 0.15), 0, 1))
            scores.append((f"i{i}", m, "j", round(4 * a) / 4, a - 0.5))
    return _pred(preds), _scores(scores)


def test_confidence_comparison_finds_information_only_where_there_is_some():
    pred, scores = _synthetic(80, informative=True)
    _, summary, confidence = evaluate(pred, scores, n_boot=300)
    row = confidence.iloc[0]
    assert row["source"] == "judge:j" and row["folds"] == 5 and row["rows"] == 240
    assert row["auc_combined"] > 0.85 and row["auc_gain_lo"] > 0.2
    assert row["accuracy_gain_lo"] > 0
    rule = summary.set_index("method").loc["confidence+alignment:judge:j"]
    assert rule["accuracy"] == pytest.approx(row["accuracy_combined"])
    assert rule["vs random lo"] > 0
    pred, scores = _synthetic(80, informative=False, seed=1)
    _, _, confidence = evaluate(pred, scores, n_boot=300)
    row = confidence.iloc[0]
    assert row["auc_gain_lo"] < 0 < row["auc_gain_hi"]  # no information, no gain


def test_confidence_comparison_needs_enough_inputs():
    pred, scores = _synthetic(4, informative=True)
    _, summary, confidence = evaluate(pred, scores, n_boot=200)
    assert confidence.empty
    assert "confidence+alignment:judge:j" not in set(summary["method"])
    assert "standardized:judge:j" in set(summary["method"])


def test_only_the_sampled_inputs_are_evaluated():
    per_input, summary, _ = evaluate(
        PRED,
        _scores([(i, m, "j", 0.5, 0.0) for i in "bcd" for m in ("m1", "m2", "m3")]),
        inputs=["b", "d"],
    )
    assert list(per_input["input_id"]) == ["b", "d"]
    assert set(summary["inputs"]) == {2}


def test_standardized_features_are_fitted_on_the_training_folds_alone():
    from percalign.trust.confidence import _grouped_folds, _problem, cross_validate

    rng = np.random.default_rng(0)
    n = 60
    groups = np.repeat(np.arange(30), 2)
    models = np.tile(["a", "b"], 30)
    features = pd.DataFrame({"confidence": rng.normal(size=n), "alignment": rng.random(n)})
    right = (rng.random(n) < 0.5).astype(int)
    first = cross_validate(features, right, groups, 5, standardize=("alignment",), within=models)
    # one test row's own value moves; the other rows of its fold keep their predictions (a
    # z-score fitted over every row would move them all)
    fold = _grouped_folds(_problem(features, right, groups, (), models), 5)[0][0][groups]
    test = np.flatnonzero(fold == 0)
    moved = features.copy()
    moved.loc[test[0], "alignment"] = 50.0
    second = cross_validate(moved, right, groups, 5, standardize=("alignment",), within=models)
    np.testing.assert_allclose(second.probability[test[1:]], first.probability[test[1:]])
    assert second.probability[test[0]] != pytest.approx(first.probability[test[0]])


def test_within_z_uses_only_the_fitted_rows():
    from percalign.trust.confidence import within_z

    values = np.array([[1.0], [3.0], [10.0], [0.0], [4.0]])
    within = np.array(["a", "a", "a", "b", "b"])
    z = within_z(values, within, fitted_on=np.array([0, 1, 3, 4]))
    # a: mean 2, SD 1 from rows 0 and 1; b: mean 2, SD 2
    assert z.ravel().tolist() == pytest.approx([-1.0, 1.0, 8.0, -1.0, 1.0])
