"""The packaged demo spec, run end to end with its step counts scaled down by ``--set``.

The same spec as ``percalign demo`` (not a copy): only the overrides below differ, and the
study folder's ``study.toml`` is that spec with them applied.
"""

from __future__ import annotations

import json

import pytest

from percalign.cli import main
from percalign.study.spec import load_spec

#: fewer images, steps, epochs, participants and inputs; every other setting is the demo's
SCALE = [
    "models.*.train.epochs=1",
    "models.*.train.limit=96",
    "models.*.train.probe_epochs=5",
    "models.*.train.eval_images=16",
    "images.n=3",
    "images.null_images=16",
    "inversion.steps=4",
    "inversion.batch_size=8",
    "survey.include_invalid=true",  # 4 steps: few IRIs pass the gate
    "bots.n=4",
    "scoring.budget=4",  # the sequential survey: a look after 2 kept participants, and at 4
    "scoring.look_every=2",
    "scoring.n_boot=200",
    "trust.max_inputs=3",
    "trust.steps=3",
    'trust.seeds="image:1"',
]


@pytest.mark.slow
def test_the_packaged_demo_runs_scaled_down(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PERCALIGN_HOME", str(tmp_path / "home"))  # its own zoo
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out)]
    for item in SCALE:
        argv += ["--set", item]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Report:" in printed
    spec = load_spec(out / "study.toml")  # the demo's spec, with the overrides applied
    assert spec.inversion.config("regularizer-free", 0).steps == 4
    assert [m.train["epochs"] for m in spec.models] == [1, 1, 1, 1]
    assert spec.inversion.losses == ["regularizer-free", "transforms", "adversarial"]
    ledger = json.loads((out / "pipeline.json").read_text())["steps"]
    assert {"survey", "bots", "score", "trust", "report"} <= set(ledger)
    assert sum(name.startswith("invert:") for name in ledger) == 12  # 4 models x 3 losses
    assert sum(name.startswith("train:") for name in ledger) == 4
    assert (out / "report" / "index.html").is_file()
    page = (out / "report" / "index.html").read_text()
    assert "simulated" in page
    # the survey's looks and decisions, and how to read estimates after stopping
    assert '<section id="sequential">' in page and "How to read the estimates" in page
    assert "Decides whether the levels of &#x27;model&#x27; differ" in page
    # the methods name each loss's seeds and the stop rule the demo uses
    assert "image, super-noise (regularizer-free); super-noise (transforms)" in page
    assert "stopped once its distance fell below 0.5 times its validity threshold" in page
