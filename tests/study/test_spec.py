"""study.toml: every field documented, bad specs refused with one clear line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from percalign.cli import main
from percalign.cli.demo import demo_spec_text
from percalign.errors import ConfigError, UnknownNameError
from percalign.study.spec import SECTIONS, load_spec, parse_spec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "study.md"


def test_every_field_of_every_section_is_documented():
    text = DOCS.read_text()
    missing = [
        f"{section}.{f.name}"
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
        if f"`{section}.{f.name}`" not in text
    ]
    assert not missing, f"undocumented in docs/study.md: {missing}"


def test_the_packaged_demo_spec_is_valid(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(demo_spec_text())
    spec = load_spec(path)
    assert len(spec.models) == 4 and spec.bots.n == 30 and spec.trust.enabled


BASE = {"models": [{"name": "tiny-cnn"}]}


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            {"modles": []},
            UnknownNameError,
            "Unknown section 'modles' in the study spec. Did you mean 'models'",
        ),
        ({"models": [{"name": "a", "wieghts": "x"}]}, UnknownNameError, "Did you mean 'weights'"),
        ({**BASE, "inversion": {"steps": "many"}}, ConfigError, "steps must be an integer"),
        ({**BASE, "inversion": {"steps": 0}}, ConfigError, "'steps' parameter"),
        ({**BASE, "inversion": {"layers": "penultimate"}}, ConfigError, "a list of strings"),
        ({**BASE, "survey": {"design": "2afx"}}, ConfigError, "did you mean '2afc'"),
        ({**BASE, "bots": {"lapse": 2.0}}, ConfigError, "'lapse' parameter of [bots]"),
        ({**BASE, "trust": {"enabled": True}}, ConfigError, "two or more models"),
        ({**BASE, "trust": {"models": ["tiny-cn"]}}, UnknownNameError, "Did you mean 'tiny-cnn'"),
        ({"models": [{"name": "a", "train": {"epochz": 3}}]}, UnknownNameError, "'epochs'"),
        ({"models": [{"name": "a"}, {"name": "a"}]}, ConfigError, "appears twice"),
        ({}, ConfigError, "at least one [[models]]"),
        ({"models": {"name": "a"}}, ConfigError, "write [[models]]"),
        ({**BASE, "inversion": {"seeds": "pink"}}, UnknownNameError, "Unknown seed type"),
        ({**BASE, "exclusions": {"min_catch_accuracy": 1.5}}, ConfigError, "min_catch_accuracy"),
    ],
)
def test_bad_specs_are_refused_with_what_to_fix(data, error, message):
    with pytest.raises(error) as info:
        parse_spec(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_names_the_file_and_exits_1(tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text('[[models]]\nname = "tiny-cnn"\n[inversion]\nstepz = 3\n')
    assert main(["study", "run", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "Did you mean 'steps'" in err[0]
    path.write_text("[[models]\nname=")
    assert main(["study", "run", str(path)]) == 1
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["study", "run", str(tmp_path / "none.toml")]) == 1
    assert "No study spec" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_study_device_and_the_inversion_override(tmp_path, monkeypatch):
    from percalign import _device
    from percalign.study.pipeline import run_study

    spec = parse_spec({**BASE, "study": {"device": "cpu"}})
    assert spec.study.device == "cpu" and spec.inversion.device is None
    spec = parse_spec({**BASE, "study": {"device": "cpu"}, "inversion": {"device": "cuda"}})
    assert spec.inversion.device == "cuda"
    monkeypatch.setattr(_device, "cuda_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^\[inversion\] device cuda was asked for"):
        run_study(spec, tmp_path / "s", log=lambda _m: None)


def test_trust_inversions_default_to_percalign_trusts(tmp_path):
    from percalign.trust import default_config

    models = [{"name": "tiny-cnn"}, {"name": "tiny-vgg"}]
    spec = parse_spec({"models": models, "trust": {"enabled": True}})
    assert spec.trust.config(spec.inversion, 3) == default_config(seed=3)
    assert default_config().stop_at_valid is not None  # the trust IRIs stop once valid
    changed = parse_spec(
        {"models": models, "trust": {"enabled": True, "steps": 40, "batch_size": 8}}
    ).trust.config(spec.inversion, 3)
    assert (changed.steps, changed.batch_size) == (40, 8)
