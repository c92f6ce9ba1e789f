from collections import Counter

import pytest

from percalign.errors import ConfigError
from percalign.survey import make_plan


def _records(n_targets=6, seeds_per_target=2, invalid_every=0):
    records = []
    for t in range(n_targets):
        for _s in range(seeds_per_target):
            i = len(records)
            records.append(
                {
                    "iri": f"iri{i}",
                    "target": f"t{t}",
                    "seed": f"s{i}",
                    "valid": not (invalid_every and i % invalid_every == 0),
                    "condition": {"model": "m", "seed_type": "super-noise"},
                }
            )
    return records


def test_every_item_is_judged_enough_and_counterbalanced():
    plan = make_plan(
        _records(),
        trials_per_participant=10,
        judgments_per_item=5,
        catch_rate=0.1,
        repeat_rate=0.1,
        seed=3,
    )
    regular = [t for slot in plan.slots for t in slot if not (t.is_catch or t.is_repeat)]
    coverage = Counter(t.item for t in regular)
    assert len(coverage) == 12 and min(coverage.values()) >= 5
    assert max(coverage.values()) - min(coverage.values()) <= 1
    for item in coverage:
        left = sum(t.correct_position == 0 for t in regular if t.item == item)
        assert abs(left - coverage[item] / 2) <= 1  # target shown left about half the time
    for slot in plan.slots:
        assert len(slot) == 10
        assert sum(t.is_catch for t in slot) == 1 and sum(t.is_repeat for t in slot) == 1
        first = [t.item for t in slot if not t.is_repeat and not t.is_catch]
        assert len(first) == len(set(first))  # no item twice, repeats aside


def test_catch_items_are_obvious_and_foils_are_right():
    plan = make_plan(
        _records(),
        foil="seed",
        trials_per_participant=8,
        judgments_per_item=2,
        catch_rate=0.25,
        seed=1,
    )
    for item in plan.items.values():
        if item.is_catch:
            assert item.query == item.candidates[0]
        else:
            assert item.candidates[1].startswith("s") and item.query.startswith("iri")
    other = make_plan(_records(), foil="other-target", trials_per_participant=8, seed=1)
    for item in other.items.values():
        assert item.candidates[1].startswith("t") and item.candidates[1] != item.candidates[0]


def test_matching_uses_k_targets():
    plan = make_plan(_records(), design="matching", k=4, trials_per_participant=6, seed=0)
    regular = [i for i in plan.items.values() if not i.is_catch]
    assert all(len(i.candidates) == 4 and len(set(i.candidates)) == 4 for i in regular)
    with pytest.raises(ConfigError, match="needs 5 other target"):
        make_plan(_records(n_targets=3), design="matching", k=6)


def test_plan_is_reproducible_and_excludes_invalid_iris():
    a = make_plan(_records(invalid_every=3), seed=7)
    b = make_plan(_records(invalid_every=3), seed=7)
    assert a.to_json() == b.to_json()
    assert a.settings["excluded_invalid"] == 4 and a.settings["items"] == 8
    assert make_plan(_records(invalid_every=3), include_invalid=True).settings["items"] == 12
    assert make_plan(_records(), seed=8).to_json() != make_plan(_records(), seed=7).to_json()


def test_bad_designs():
    with pytest.raises(ConfigError, match="every one failed the validity gate"):
        make_plan(_records(invalid_every=1))
    with pytest.raises(ConfigError, match="'design' parameter"):
        make_plan(_records(), design="3afc")
    with pytest.raises(ConfigError, match="leave no regular trials"):
        make_plan(_records(), trials_per_participant=2, catch_rate=0.5, repeat_rate=0.5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("design", "trials"), [("2afc", 20), ("2afc", 11), ("matching", 12)])
def test_target_position_is_balanced_within_every_participant_and_per_item(seed, design, trials):
    plan = make_plan(
        _records(n_targets=8),
        design=design,
        k=3,
        trials_per_participant=trials,
        judgments_per_item=7,
        catch_rate=0.2,
        repeat_rate=0.1,
        seed=seed,
    )
    width = plan.settings["k"]
    for slot in plan.slots:  # catch and repeated trials included
        shown = Counter(t.correct_position for t in slot)
        assert all(abs(shown[p] - len(slot) / width) < 1 for p in range(width)), shown
    regular = [t for slot in plan.slots for t in slot if not t.is_catch]
    for item in {t.item for t in regular}:
        shown = Counter(t.correct_position for t in regular if t.item == item)
        n = sum(shown.values())
        assert all(abs(shown[p] - n / width) <= 1 for p in range(width)), (item, shown)


def test_a_participant_who_always_picks_the_left_image_scores_chance_in_every_slot():
    plan = make_plan(
        _records(n_targets=10), trials_per_participant=20, judgments_per_item=6, seed=4
    )
    for slot in plan.slots:
        score = sum(t.correct_position == 0 for t in slot) / len(slot)
        assert abs(score - 0.5) <= 0.05, score
    assert plan.settings["min_display_ms"] > 0  # recorded with the plan
