"""Study tasks: chunks that fill whole batches, parts that merge into the whole call, a chunked
study that writes the same files, and the [tasks] settings."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import percalign as pa
from percalign.errors import ConfigError, WeightsError
from percalign.execution.tasks import ModelRef, invert_part, merge, target_chunks
from percalign.inversion import InversionConfig, invert
from percalign.study.pipeline import LEDGER, run_study
from percalign.study.spec import load_spec, parse_spec


@given(
    n=st.integers(1, 60),
    per_task=st.integers(0, 70),
    per_target=st.integers(1, 5),
    batch=st.integers(1, 70),
)
def test_chunks_cover_the_targets_once_and_fill_whole_batches(n, per_task, per_target, batch):
    chunks = target_chunks(n, per_task, per_target, batch)
    assert [t for c in chunks for t in c] == list(range(n))
    for chunk in chunks[:-1]:
        assert len(chunk) >= per_task and (len(chunk) * per_target) % batch == 0
    assert len(chunks) == 1 or per_task > 0


def test_merged_parts_are_the_whole_call(digits3):
    model = pa.models.load("tiny-cnn")
    images, labels = digits3
    layers = ["penultimate", "output"]
    config = InversionConfig(steps=4, optimizer="adam", batch_size=4)
    kwargs = {"layers": layers, "seeds": "super-noise,image", "config": config, "labels": labels}
    whole = invert(model, images, **kwargs)
    parts = [
        invert(model, images, only_targets=chunk, only_objectives=[o], **kwargs)
        for o in range(len(layers))
        for chunk in target_chunks(len(images), 3, 2, 4)  # rounded up to 4 targets
    ]
    assert len(parts) == 4
    merged = merge(parts)
    for name in ("iris", "seeds", "targets", "target_index", "distance", "seed_distance"):
        assert torch.equal(getattr(merged, name), getattr(whole, name)), name
    for name in ("seed_kind", "seed_copy", "seed_source", "objective", "curve_steps"):
        assert getattr(merged, name) == getattr(whole, name), name
    assert torch.equal(merged.curves, whole.curves)
    for layer, values in whole.layer_distance.items():
        torch.testing.assert_close(
            merged.layer_distance[layer], values, rtol=0, atol=0, equal_nan=True
        )


def test_a_chunked_study_writes_the_same_files(tmp_path, small_study, study_digest):
    whole = tmp_path / "whole"
    run_study(load_spec(small_study(whole, steps=5)), whole, log=lambda _m: None)
    chunked = tmp_path / "chunked"
    events = []
    pipeline = run_study(
        load_spec(small_study(chunked, steps=5, extra="[tasks]\ntargets = 2\n")),
        chunked,
        log=lambda _m: None,
        on_task=events.append,
    )
    assert study_digest(chunked) == study_digest(whole)
    # per run: targets, seeds, IRIs, the grid, judgments.csv, the IRI records
    assert len(study_digest(whole)) == 2 * (8 + 16 + 16 + 3)
    ledger = json.loads((chunked / LEDGER).read_text())["steps"]
    assert ledger["invert:tiny-cnn__regularizer-free"]["tasks"] == 5  # 4 chunks + the null
    assert ledger["invert:tiny-cnn__regularizer-free"]["backend"] == "local"
    invert_events = [e for e in events if e.step == "invert"]
    assert [e.done for e in invert_events] == list(range(11)) and invert_events[-1].total == 10
    assert len(pipeline.executed) == len(set(pipeline.executed))


def test_a_task_refuses_a_model_with_other_weights(digits3):
    ref = ModelRef("tiny-cnn", None, "0" * 64)
    with pytest.raises(WeightsError) as info:
        invert_part(
            ref,
            digits3[0],
            None,
            layers=["penultimate"],
            seeds="uniform",
            config=InversionConfig(steps=1),
            device="cpu",
        )
    assert "other weights here" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"targets": -1}, "'targets' parameter of [tasks]"),
        ({"cpus": 0}, "'cpus' parameter of [tasks] must be a finite number in (0, inf)"),
        ({"gpus": -0.5}, "'gpus' parameter of [tasks]"),
        ({"retries": -1}, "'retries' parameter of [tasks]"),
        ({"workers": -1}, "'workers' parameter of [tasks]"),
        ({"workers": 1.5}, "[tasks] workers must be an integer"),
        ({"gpus": "auto"}, "[tasks] gpus must be a number"),
    ],
)
def test_bad_task_settings_are_refused(tasks, message):
    with pytest.raises(ConfigError) as info:
        parse_spec({"models": [{"name": "tiny-cnn"}], "tasks": tasks})
    assert message in str(info.value)
