"""Attention a one-side clicker cannot pass: catch trials side-balanced within every
participant, and the pre-declared side rule, over every slot of the README's default plan."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from percalign.errors import ConfigError
from percalign.scoring.attention import AttentionRules, attention_failures, side_share
from percalign.survey import make_plan

#: the README's `survey build` line: 2AFC, 40 trials per participant, 5 judgments per item
README = {"design": "2afc", "trials_per_participant": 40, "judgments_per_item": 5}


def _records(runs=2, targets=48, seeds=2):
    """IRIs like the demo's: per run, 48 digits (10 classes) from noise and from a digit."""
    return [
        {
            "iri": f"r{r}i{t}.{s}",
            "target": f"r{r}t{t}",
            "seed": f"r{r}n{t}.{s}",
            "label": t % 10,
            "pool": f"run{r}",
            "valid": True,
        }
        for r in range(runs)
        for t in range(targets)
        for s in range(seeds)
    ]


@pytest.fixture(scope="module")
def readme_plan():
    return make_plan(_records(), **README)


def _answers(slot, pick):
    """(display positions, correct, is_catch) of a participant who picks ``pick(trial)``."""
    positions = [pick(t) for t in slot]
    correct = [t.order[p] == 0 for t, p in zip(slot, positions, strict=True)]
    return positions, correct, [t.is_catch for t in slot]


def test_catch_trials_are_side_balanced_within_every_slot(readme_plan):
    assert readme_plan.settings["catch_per_slot"] == 4
    for slot in readme_plan.slots:
        sides = [t.correct_position for t in slot if t.is_catch]
        assert sorted(sides) == [0, 0, 1, 1]
        assert abs(sum(t.correct_position for t in slot) - len(slot) / 2) <= 0.5


@pytest.mark.parametrize("side", [0, 1], ids=["always-left", "always-right"])
def test_a_one_side_clicker_fails_in_every_slot_of_the_readme_plan(readme_plan, side):
    rules = AttentionRules()
    failed = [
        attention_failures(*_answers(slot, lambda _t: side), rules) for slot in readme_plan.slots
    ]
    assert len(failed) == readme_plan.settings["slots"] == 29  # 192 items x 5 / 34 regular
    assert all(len(f) == 2 for f in failed)  # both rules, in every slot


def test_random_clickers_fail_at_the_documented_rate(readme_plan):
    # 4 catch trials, 0.8 needed: a random clicker passes only with all 4 right (1/16); the
    # side rule adds about 2e-8 at 40 answers. Documented: 15/16 = 93.75% get the failed code.
    rng = np.random.default_rng(0)
    rules = AttentionRules()
    n = fails = 0
    for slot in readme_plan.slots:
        for _ in range(100):
            positions, correct, catch = _answers(slot, lambda _t: int(rng.integers(2)))
            fails += bool(attention_failures(positions, correct, catch, rules))
            n += 1
    test = binomtest(fails, n, 15 / 16)
    assert test.pvalue > 0.001, (fails, n)


def test_an_attentive_participant_passes_whatever_their_accuracy(readme_plan):
    # right on every catch trial; on regular trials right with probability 0.7
    rng = np.random.default_rng(1)
    rules = AttentionRules()
    for slot in readme_plan.slots[:50]:
        positions, correct, catch = _answers(
            slot,
            lambda t: (
                t.correct_position if t.is_catch or rng.random() < 0.7 else 1 - t.correct_position
            ),
        )
        assert attention_failures(positions, correct, catch, rules) == []


def test_the_side_rule_needs_enough_answers():
    rules = AttentionRules(min_catch_accuracy=0.0)
    assert attention_failures([0] * 9, [True] * 9, [False] * 9, rules) == []
    assert attention_failures([0] * 10, [True] * 10, [False] * 10, rules) == [
        "100% of 10 answers on one side (over 90%)"
    ]
    # exactly 90% is allowed: the rule is "more than"
    assert attention_failures([0] * 9 + [1], [True] * 10, [False] * 10, rules) == []
    assert side_share([]) == 0.0 and side_share([2, 2, 1]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"min_catch_accuracy": 1.5}, "min_catch_accuracy"),
        ({"max_side_share": -0.1}, "max_side_share"),
        ({"min_side_trials": 0}, "min_side_trials"),
    ],
)
def test_bad_attention_rules_are_refused(kw, name):
    with pytest.raises(ConfigError, match=name):
        AttentionRules(**kw)
