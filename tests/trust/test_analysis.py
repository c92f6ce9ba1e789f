"""The trust analysis end to end on a constructed case with a known answer.

Model ``aligned`` classifies digits by their nearest class mean in pixel space, so its
penultimate representation is the image itself: its IRIs reproduce their targets. Model
``blind`` represents an image by its mean brightness only and always says "0" with high
confidence: its IRIs stay close to their seeds (digits of other classes). Wherever they
disagree, the rule must trust ``aligned``; the most confident model is ``blind``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from torch import nn

from percalign.cli import main
from percalign.data import load_images
from percalign.inversion import InversionConfig
from percalign.judges import Bot, get_judges
from percalign.models import from_module
from percalign.study.serve import local_survey
from percalign.survey.bots import run_bots
from percalign.trust import analyze

CONFIG = InversionConfig.from_preset("default", steps=60)


@pytest.fixture(scope="module")
def models():
    train = load_images("digits", size=32, split="train")
    x = (train.images.flatten(1) - 0.5) / 0.5
    means = torch.stack([x[train.labels == c].mean(0) for c in range(10)])
    nearest = nn.Sequential(nn.Flatten(), nn.Linear(1024, 10))
    with torch.no_grad():
        # scaled down so that its softmax stays below the blind model's near-certainty
        nearest[1].weight.copy_(0.01 * means)
        nearest[1].bias.copy_(-0.005 * (means**2).sum(1))
    blind = nn.Sequential(nn.Flatten(), nn.Linear(1024, 1), nn.Linear(1, 10))
    with torch.no_grad():
        blind[1].weight.fill_(1 / 1024)
        blind[1].bias.zero_()
        blind[2].weight.zero_()
        blind[2].bias.zero_()
        blind[2].bias[0] = 50.0
    common = {"mean": (0.5,), "std": (0.5,), "input_size": 32, "num_classes": 10}
    return [
        from_module(nearest, name="aligned", **common),
        from_module(blind, name="blind", **common),
    ]


def test_the_rule_trusts_the_aligned_model(models, tmp_path):
    result = analyze(
        tmp_path / "trust",
        models,
        n_images=40,
        judges=get_judges("pixel,ssim"),
        metric="seed_2afc",
        seeds="image:1",
        config=CONFIG,
        n_boot=500,
    )
    per_input = result.per_input
    assert len(per_input) >= 20  # "blind" is right on the zeros only
    assert set(per_input["pick:pixel"]) == {"aligned"}
    assert set(per_input["pick:ssim"]) == {"aligned"}
    summary = result.summary.set_index("method")
    aligned_right = (per_input["pred:aligned"] == per_input["label"]).mean()
    assert summary.loc["rule:pixel", "accuracy"] == pytest.approx(aligned_right)
    assert summary.loc["max-softmax", "accuracy"] < 0.2  # blind is the confident one
    assert summary.loc["rule:pixel", "vs max-softmax lo"] > 0
    # the same targets and seeds for both models
    manifests = [
        json.loads((result.folder / "runs" / m / "manifest.json").read_text())
        for m in ("aligned", "blind")
    ]
    assert [r["seed_sha256"] for r in manifests[0]["iris"]] == [
        r["seed_sha256"] for r in manifests[1]["iris"]
    ]
    written = json.loads((result.folder / "trust.json").read_text())
    assert written["disputed"] == len(per_input)
    assert pd.read_csv(result.folder / "per_input.csv").shape[0] == len(per_input)


def test_select_builds_a_survey_and_answers_come_back_as_humans(models, tmp_path):
    first = analyze(
        tmp_path / "trust",
        models,
        n_images=30,
        judges=get_judges("pixel"),
        seeds="image:1",
        config=CONFIG,
        select=4,
        survey={
            "trials_per_participant": 8,
            "judgments_per_item": 2,
            "catch_rate": 0.0,
            "repeat_rate": 0.0,
            "include_invalid": True,
        },
        n_boot=500,
    )
    assert first.selected is not None and len(first.selected) == 4
    assert first.survey is not None
    with local_survey(first.survey) as url:
        answered = run_bots(url, [Bot(get_judges("pixel")[0], lapse=0.0, seed=i) for i in range(2)])
    assert sum(answered.values()) == 16
    again = analyze(
        tmp_path / "again",
        models,
        n_images=30,
        judges=get_judges("pixel"),
        seeds="image:1",
        config=CONFIG,
        study=first.survey,
        n_boot=500,
    )
    humans = again.scores[again.scores["source"] == "humans"]
    assert set(humans["input_id"]) <= set(first.selected)
    by_model = humans.groupby("model")["alignment"].mean()
    assert by_model["aligned"] == 1.0  # the bots see the IRI equal to its target
    assert "rule:humans" in set(again.summary["method"])


def test_cli_refuses_one_model_and_an_unknown_one(tmp_path, capsys):
    assert main(["trust", "--models", "tiny-cnn", "--out", str(tmp_path / "t")]) == 1
    assert "two or more" in capsys.readouterr().err
    assert main(["trust", "--models", "tiny-cnn,no-such-model", "--out", str(tmp_path / "t")]) == 1
    assert "no-such-model" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_cli_runs_on_registered_models(tmp_path, capsys):
    out = tmp_path / "trust"
    code = main(
        [
            "trust",
            "--models",
            "tiny-cnn,tiny-resnet",
            "--n-images",
            "12",
            "--steps",
            "3",
            "--judges",
            "pixel",
            "--seeds",
            "super-noise",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "rule:pixel" in text and "oracle" in text
    assert (out / "summary.csv").is_file() and (out / "runs" / "tiny-resnet").is_dir()
