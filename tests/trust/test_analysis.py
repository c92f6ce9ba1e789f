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
from percalign.execution.serve import local_survey
from percalign.inversion import InversionConfig
from percalign.judges import Bot, get_judges
from percalign.models import from_module
from percalign.store.study import bot_token
from percalign.survey.bots import run_bots
from percalign.survey.settings import SurveyDesign
from percalign.trust import TrustSettings, analyze

# clamped pixels: the aligned model's IRIs must reach the targets' exact zeros, which sigmoid
# pixels approach only slowly; this case tests the rules, not the engine
CONFIG = InversionConfig(
    steps=60, optimizer="adam", lr=0.05, schedule="cosine", parameterization="pixel"
)


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
    progress = []
    settings = TrustSettings(
        n_images=60, max_inputs=30, metric="seed_2afc", seeds="image:2", n_boot=500
    )
    result = analyze(
        tmp_path / "trust",
        models,
        settings,
        judges=get_judges("pixel,ssim"),
        config=CONFIG,
        progress=progress.append,
    )
    per_input = result.per_input
    written = json.loads((result.folder / "trust.json").read_text())
    assert written["disputed"] > 30 and written["used"] == 30 == len(per_input)
    assert set(per_input["input_id"]) <= set(result.predictions["input_id"])
    validity = pd.read_csv(result.folder / "validity.csv")
    # an input is scored where every model has a valid IRI of it
    scored = per_input[per_input["pick:absolute:judge:pixel"].notna()]
    assert len(scored) >= 15, validity
    assert set(scored["pick:absolute:judge:pixel"]) == {"aligned"}
    assert set(scored["pick:absolute:judge:ssim"]) == {"aligned"}
    summary = result.summary.set_index("method")
    assert summary.loc["absolute:judge:pixel", "inputs"] == len(scored)
    aligned_right = (scored["pred:aligned"] == scored["label"]).mean()
    assert summary.loc["absolute:judge:pixel", "accuracy"] == pytest.approx(aligned_right)
    assert summary.loc["max-softmax", "accuracy"] < 0.2, validity  # blind is the confident one
    assert summary.loc["absolute:judge:pixel", "vs max-softmax lo"] > 0
    for rule in ("standardized", "confidence+alignment"):
        assert f"{rule}:judge:ssim" in summary.index
    assert set(result.confidence["source"]) == {"judge:pixel", "judge:ssim"}
    assert (
        result.verdict.startswith(f"On {len(scored)} disputed inputs")
        and result.verdict == written["verdict"]
    )
    # one progress bar over both models: the totals cover both, the count only grows
    assert progress[0].batches == 2 * -(-60 // CONFIG.batch_size)  # 30 inputs x 2 seeds
    assert {p.steps_total for p in progress} == {CONFIG.steps * progress[0].batches}
    done = [p.steps_done for p in progress]
    assert done == sorted(done) and done[-1] == progress[-1].steps_total
    models_table = pd.read_csv(result.folder / "models.csv").set_index("model")
    assert models_table.loc["aligned", "accuracy"] > 0.8
    assert models_table.loc["aligned", "lo"] < models_table.loc["aligned", "accuracy"]
    # the same targets and seeds for both models
    manifests = [
        json.loads((result.folder / "runs" / m / "manifest.json").read_text())
        for m in ("aligned", "blind")
    ]
    assert [r["seed_sha256"] for r in manifests[0]["iris"]] == [
        r["seed_sha256"] for r in manifests[1]["iris"]
    ]
    assert pd.read_csv(result.folder / "per_input.csv").shape[0] == len(per_input)
    assert validity["iris"].sum() == 2 * 30 * 2 == written["iris"]
    assert written["dropped_invalid"] == validity["dropped"].sum()


def test_select_builds_a_survey_and_bot_answers_come_back_as_bots(models, tmp_path):
    settings = TrustSettings(n_images=30, max_inputs=None, seeds="image:1", n_boot=500)
    first = analyze(
        tmp_path / "trust",
        models,
        settings,
        judges=get_judges("pixel"),
        config=CONFIG,
        select=4,
        survey=SurveyDesign(
            trials_per_participant=8,
            judgments_per_item=2,
            catch_rate=0.0,
            repeat_rate=0.0,
            include_invalid=True,
        ),
    )
    assert first.selected is not None and len(first.selected) == 4
    assert first.survey is not None
    with local_survey(first.survey) as url:
        bots = [Bot(get_judges("pixel")[0], lapse=0.0, seed=i) for i in range(2)]
        answered = run_bots(url, bots, bot_token=bot_token(first.survey))
    assert sum(answered.values()) == 16
    again = analyze(
        tmp_path / "again",
        models,
        settings,
        judges=get_judges("pixel"),
        config=CONFIG,
        study=first.survey,
    )
    sources = set(again.scores["source"])
    assert "humans" not in sources  # every answer came from a simulated participant
    assert sources == {"judge:pixel", "bots"}
    bots = again.scores[again.scores["source"] == "bots"]
    assert set(bots["input_id"]) <= set(first.selected)
    by_model = bots.groupby("model")["alignment"].mean()
    assert by_model["aligned"] == 1.0  # the bots see the IRI equal to its target
    methods = set(again.summary["method"])
    assert "absolute:bots" in methods and not any("humans" in m for m in methods)
    labels = again.summary.set_index("method").loc["absolute:bots", "source_label"]
    assert labels == "simulated participants (bots)"
    for name in ("scores.csv", "summary.csv", "per_input.csv", "confidence.csv", "trust.json"):
        assert "humans" not in (again.folder / name).read_text()


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
    # three steps leave every IRI of these random models invalid: nothing is scored, and
    # the command says so instead of scoring noise
    assert "24 of 24 IRIs invalid" in text and "oracle" in text
    assert "Verdict: No source scored every model" in text
    assert (out / "summary.csv").is_file() and (out / "runs" / "tiny-resnet").is_dir()
