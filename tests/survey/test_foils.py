"""Foils measure the IRI, not the design: over random plans, no wrong candidate is of the
target's class, the IRI's own seed, or a target of another run (another input format)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from percalign.errors import ConfigError
from percalign.survey import make_plan


@st.composite
def studies(draw):
    """IRI records of 1-3 runs; each run's targets have labels (or none), and its image
    seeds are other targets of the run (the same bytes, so the same stimulus id)."""
    records = []
    for run in range(draw(st.integers(1, 3))):
        n_targets = draw(st.integers(5, 9))
        n_classes = draw(st.integers(3, 6))
        labelled = draw(st.booleans())
        targets = [(f"r{run}t{t}", f"digits/{t}", t % n_classes) for t in range(n_targets)]
        for t, (sha, tid, label) in enumerate(targets):
            for copy in range(draw(st.integers(1, 3))):
                image_seed = draw(st.booleans())
                source = draw(st.integers(0, n_targets - 1).filter(lambda s, t=t: s != t))
                records.append(
                    {
                        "iri": f"r{run}i{t}.{copy}",
                        "target": sha,
                        # an image seed is a pool image: the same stimulus as that target
                        "seed": targets[source][0] if image_seed else f"r{run}noise{t}.{copy}",
                        "seed_source_id": targets[source][1] if image_seed else None,
                        "target_id": tid,
                        "label": label if labelled else None,
                        "pool": f"run{run}",
                        "valid": True,
                        "condition": {"model": f"m{run}"},
                    }
                )
    return records


def _check(plan, records):
    by_iri = {r["iri"]: r for r in records}
    label = {r["target"]: r["label"] for r in records}
    pool = {r["target"]: r["pool"] for r in records}
    for item in plan.items.values():
        if item.is_catch:
            continue
        r = by_iri[item.query]
        target, *foils = item.candidates
        assert target == r["target"]
        for f in foils:
            assert f != r["seed"], "a seed is never its own IRI's foil"
            assert pool[f] == r["pool"], "foils come from the IRI's own run"
            if r["label"] is not None:
                assert label[f] != r["label"], "a foil is of another class than the target"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=studies(), seed=st.integers(0, 2**16), design=st.sampled_from(["2afc", "matching"]))
def test_no_foil_is_of_the_targets_class_or_the_iris_seed(records, seed, design):
    try:
        plan = make_plan(
            records, design=design, k=3, trials_per_participant=12, judgments_per_item=2, seed=seed
        )
    except ConfigError as e:  # only when a run truly lacks foils: say which
        assert "other target(s) per IRI" in str(e)
        return
    _check(plan, records)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=studies(), seed=st.integers(0, 2**16))
def test_matching_screens_keep_to_one_run_and_distinct_classes(records, seed):
    try:
        plan = make_plan(
            records,
            design="clustering",
            k=3,
            trials_per_participant=4,
            judgments_per_item=1,
            seed=seed,
        )
    except ConfigError as e:
        assert "k=3" in str(e)
        return
    label = {r["target"]: r["label"] for r in records}
    pool = {r["target"]: r["pool"] for r in records}
    for item in plan.items.values():
        assert len({pool[c] for c in item.candidates}) == 1
        labels = [label[c] for c in item.candidates if label[c] is not None]
        assert len(labels) == len(set(labels))


def test_a_run_without_enough_foils_is_refused_with_the_fix():
    # two targets of one class: no target of another class to stand beside either
    records = [
        {
            "iri": f"i{t}",
            "target": f"t{t}",
            "seed": f"n{t}",
            "label": 3,
            "pool": "run",
            "valid": True,
        }
        for t in range(2)
    ]
    with pytest.raises(ConfigError, match=r"other target\(s\) per IRI.*--foil seed"):
        make_plan(records, trials_per_participant=2, judgments_per_item=1)


def test_foils_never_cross_runs_even_when_another_run_has_more_targets():
    records = [
        {
            "iri": f"a{t}",
            "target": f"at{t}",
            "seed": f"an{t}",
            "label": t,
            "pool": "grey",
            "valid": True,
        }
        for t in range(2)
    ] + [
        {
            "iri": f"b{t}",
            "target": f"bt{t}",
            "seed": f"bn{t}",
            "label": t,
            "pool": "rgb",
            "valid": True,
        }
        for t in range(6)
    ]
    plan = make_plan(records, trials_per_participant=4, judgments_per_item=1, seed=5)
    for item in plan.items.values():
        if not item.is_catch:
            assert {c[0] for c in item.candidates} == {item.query[0]}
