"""A study mixing a greyscale and an RGB model runs end to end: the survey keeps every
trial's images in one run (one input format), and the simulated participants and the judges
answer it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from PIL import Image

from percalign.cli import main

MIXED = """
[[models]]
name = "tiny-cnn"

[[models]]
name = "mixed-grey-cnn"
train = { recipe = "standard", width = 4, epochs = 1, limit = 32, eval_images = 8 }

[images]
n = 6
null_images = 16

[inversion]
seeds = "super-noise,image"
steps = 3

[judges]
names = ["pixel"]

[survey]
trials_per_participant = 8
judgments_per_item = 1
include_invalid = true

[bots]
n = 2
"""


@pytest.mark.slow
def test_a_study_of_grey_and_rgb_models_runs_with_bots(tmp_path, monkeypatch):
    monkeypatch.setenv("PERCALIGN_HOME", str(tmp_path / "home"))  # its own zoo
    spec = tmp_path / "study.toml"
    spec.write_text(MIXED)
    out = tmp_path / "out"
    assert main(["study", "run", str(spec), "--out", str(out)]) == 0
    survey = out / "survey"
    mode = {
        p.stem: Image.open(p).mode for p in (survey / "stimuli").glob("*.png")
    }  # L for the grey model's images, RGB for tiny-cnn's
    assert set(mode.values()) == {"L", "RGB"}
    plan = json.loads((survey / "plan.json").read_text())
    for item in plan["items"]:
        assert len({mode[s] for s in (item["query"], *item["candidates"])}) == 1
    answers = pd.read_csv(out / "scores" / "answers.csv")
    assert answers["participant"].nunique() == 2 and len(answers) == 16
    assert set(answers["model"]) == {"tiny-cnn", "mixed-grey-cnn"}
    versus = pd.read_csv(out / "scores" / "judges_vs_humans.csv")
    assert list(versus["judge"]) == ["pixel"]
