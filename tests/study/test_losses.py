"""A study over several loss families: the adversary never judges its own IRIs, people are asked
about the chosen losses only, and most-IRIs-failed runs are reported with their cause."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from percalign.errors import ConfigError, UnknownNameError
from percalign.study.pipeline import run_study
from percalign.study.spec import load_spec

EXTRA = """
[trust]
enabled = false

[bots]
n = 0
"""


def _spec_text(small_study, folder, **replace):
    path = small_study(folder, steps=4)
    text = path.read_text().replace('seeds = "super-noise,image"', "\n".join([
        'seeds = "super-noise,image"',
        'losses = ["regularizer-free", "adversarial"]',
        'adversary = "pixel"',
    ]))
    for old, new in replace.items():
        text = text.replace(old, new)
    path.write_text(text + EXTRA)
    return path


def test_the_adversary_is_held_out_and_the_survey_takes_the_chosen_losses(small_study, tmp_path):
    folder = tmp_path / "s"
    path = _spec_text(small_study, folder, **{
        "[survey]\nenabled = false": '[survey]\nlosses = ["regularizer-free"]\n'
        "trials_per_participant = 8\njudgments_per_item = 1\ninclude_invalid = true",
    })
    logs: list[str] = []
    run_study(load_spec(path), folder, log=logs.append)
    adv = pd.read_csv(folder / "runs" / "tiny-cnn__adversarial" / "judgments.csv")
    free = pd.read_csv(folder / "runs" / "tiny-cnn__regularizer-free" / "judgments.csv")
    assert set(adv["judge"]) == {"ssim"} and set(free["judge"]) == {"pixel", "ssim"}
    assert any("pixel held out" in line for line in logs)
    manifest = json.loads((folder / "runs" / "tiny-cnn__adversarial" / "manifest.json").read_text())
    assert manifest["config"]["adversary"] == "pixel"
    assert manifest["config"]["adversarial_lambda"] == "auto"
    plan = json.loads((folder / "survey" / "plan.json").read_text())
    assert '"adversarial"' not in json.dumps(plan) and '"regularizer-free"' in json.dumps(plan)
    validity = pd.read_csv(folder / "scores" / "validity.csv")
    assert set(validity["seed_type"]) == {"super-noise", "image"}
    assert {"median_first_valid_step", "at_0_or_1"} <= set(validity.columns)


def test_a_study_whose_only_judge_is_the_adversary_is_refused(small_study, tmp_path):
    path = _spec_text(small_study, tmp_path / "s", **{'names = ["pixel", "ssim"]': 'names = ["pixel"]'})
    with pytest.raises(ConfigError, match="held out from judging"):
        load_spec(path)


def test_survey_losses_must_be_inverted_losses(small_study, tmp_path):
    path = _spec_text(small_study, tmp_path / "s", **{
        "[survey]\nenabled = false": '[survey]\nlosses = ["transforms"]'})
    with pytest.raises(UnknownNameError, match="Unknown loss 'transforms' in \\[survey\\] losses"):
        load_spec(path)


def test_most_iris_failing_is_reported_with_its_cause(small_study, tmp_path):
    folder = tmp_path / "p"
    path = small_study(folder, steps=2)
    path.write_text(path.read_text().replace("steps = 2\n", 'steps = 2\npreset = "paper"\n'))
    logs: list[str] = []
    run_study(load_spec(path), folder, log=logs.append)
    warnings = [line for line in logs if line.startswith("Warning:") and "validity gate" in line]
    assert warnings and "tiny-cnn" in " ".join(warnings)
    report = (folder / "report" / "index.html").read_text()
    assert "passed the validity gate" in report
