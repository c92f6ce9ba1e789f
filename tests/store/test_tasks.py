"""The shared units of work (invert into a run folder, judge it) and run subsets."""

from __future__ import annotations

import pandas as pd
import pytest

import percalign as pa
from percalign.errors import MissingFileError
from percalign.execution.run_folders import JUDGMENTS, invert_images, judge_folder
from percalign.inversion import InversionConfig
from percalign.judges import get_judges
from percalign.store import read_manifest, subset_run
from percalign.store.images import read_png


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    model = pa.models.load("tiny-cnn")
    images = pa.data.load_images("digits", 4, size=32)
    out = tmp_path_factory.mktemp("tasks") / "run"
    invert_images(
        out,
        model,
        images,
        seeds="super-noise,image",
        config=InversionConfig(steps=3, optimizer="adam"),
        null_pool=images,
        extra={"images": {"split": "all"}, "command": "test"},
    )
    return out


def test_invert_images_writes_a_run_with_validity_and_merged_image_record(run_folder):
    manifest = read_manifest(run_folder)
    assert len(manifest["iris"]) == 8
    assert all(r["valid"] is not None for r in manifest["iris"])
    assert manifest["images"]["split"] == "all" and manifest["images"]["n"] == 4
    assert manifest["command"] == "test"
    assert manifest["tasks"] == {"backend": "in process", "inversion_parts": 1}


def test_judge_folder_writes_the_table_it_returns(run_folder):
    table = judge_folder(run_folder, get_judges("pixel"))
    written = pd.read_csv(run_folder / JUDGMENTS)
    assert len(written) == len(table) == 8
    assert list(written["iri"]) == list(table["iri"])


def test_subset_keeps_only_the_chosen_targets_renumbered(run_folder, tmp_path):
    manifest = read_manifest(run_folder)
    keep = manifest["targets"][2]["id"]
    part = subset_run(run_folder, tmp_path / "part", [keep])
    sub = read_manifest(part)
    assert [t["id"] for t in sub["targets"]] == [keep]
    assert [t["index"] for t in sub["targets"]] == [0]
    assert len(sub["iris"]) == 2 and {r["target_index"] for r in sub["iris"]} == {0}
    for r in sub["iris"]:
        assert read_png(part / r["iri"]).equal(read_png(run_folder / r["iri"]))
    with pytest.raises(MissingFileError, match="no target"):
        subset_run(run_folder, tmp_path / "none", ["digits/none"])
    assert not (tmp_path / "none").exists()


def test_a_run_cut_into_chunks_writes_the_folder_invert_images_writes(tmp_path):
    # the command's path (invert_images: the run's tasks in process) and the study's (the same
    # InversionRun cut into chunks of targets, its tasks run elsewhere, saved by the driver)
    # are one path: the same IRIs, records and validity
    from percalign.execution.backends import LocalBackend
    from percalign.execution.run_folders import (
        InversionRun,
        inversion_tasks,
        save_inversion_run,
    )

    model = pa.models.load("tiny-cnn")
    images = pa.data.load_images("digits", 6, size=32)
    settings = {
        "layers": ["penultimate", "output"],
        "seeds": "super-noise,image",
        "config": InversionConfig(steps=3, optimizer="adam", batch_size=4),
        "null_pool": images,
    }
    invert_images(tmp_path / "whole", model, images, **settings)
    run = InversionRun(tmp_path / "chunked", model, images, targets_per_task=3, **settings)
    tasks = inversion_tasks(run, device="cpu")
    assert len(tasks) == 2 + 2 * 2  # a null per objective; 2 chunks (rounded up to 4 targets)
    outputs = {task.key: output for task, output in LocalBackend().run(tasks)}
    save_inversion_run(run, outputs, backend="local")
    whole, chunked = read_manifest(tmp_path / "whole"), read_manifest(tmp_path / "chunked")
    assert chunked["tasks"] == {"backend": "local", "inversion_parts": 4}
    assert whole["tasks"] == {"backend": "in process", "inversion_parts": 2}
    assert whole["validity"] == chunked["validity"]
    assert [r["iri_sha256"] for r in whole["iris"]] == [r["iri_sha256"] for r in chunked["iris"]]
    assert len(whole["iris"]) == 6 * 2 * 2
