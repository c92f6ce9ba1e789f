"""Validation before work: ``study run`` and ``study check`` refuse, in one line and before
training or inverting anything, every value of study.toml that a later step would refuse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from percalign.cli import main
from percalign.study.overrides import dump_spec

GOOD: dict[str, Any] = {
    "models": [{"name": "tiny-cnn"}, {"name": "tiny-vgg"}],
    "images": {"n": 4, "null_images": 8},
    "inversion": {"steps": 2},
    "judges": {"names": ["pixel"]},
    "survey": {"trials_per_participant": 8, "judgments_per_item": 2},
    "bots": {"n": 2},
}


def _spec(section: str, values: dict[str, Any]) -> str:
    """The good spec with ``values`` set in ``section`` (``models``: a first entry added)."""
    data = copy.deepcopy(GOOD)
    if section == "models":
        data["models"].insert(0, values)
    else:
        data.setdefault(section, {}).update(values)
    return dump_spec(data)


BAD: list[tuple[str, dict[str, Any], str | None]] = [
    ("judges", {"names": ["ssimm"]}, "[judges] names: Unknown judge 'ssimm'. Did you mean 'ssim'"),
    ("survey", {"iris_per_target": 50}, "Got 50; the closest valid value is 20"),
    ("survey", {"min_display_ms": 20000}, "Got 20000; the closest valid value is 10000"),
    ("judges", {"k": 1}, "Got 1; the closest valid value is 2"),
    ("bots", {"judge": "pixl"}, "[bots] judge: Unknown judge 'pixl'. Did you mean 'pixel'"),
    ("trust", {"judges": ["ssimm"]}, "[trust] judges: Unknown judge 'ssimm'"),
    (
        "judges",
        {"names": ["model:tiny-cnnn"]},
        "Unknown model 'tiny-cnnn'. Did you mean 'tiny-cnn'",
    ),
    (
        "models",
        {"name": "bad name/x", "train": {"epochs": 1}},
        "the closest valid name is 'bad-name-x'",
    ),
    (
        "models",
        {"name": "eps-on-standard", "train": {"recipe": "standard", "eps": 0.5}},
        "eps has no effect on recipe 'standard'",
    ),
    ("inversion", {"layers": ["layer9"]}, "Unknown layer 'layer9' in [inversion] layers for model"),
    ("scoring", {"by": ["architecture", "seed-type"]}, "Did you mean 'seed_type'"),
    ("scoring", {"table_rows": "arch"}, "Unknown column 'arch' in [scoring] table_rows"),
    ("survey", {"design": "matching", "k": 5}, "the closest valid values are [images] n = 5"),
    (
        "survey",
        {"trials_per_participant": 2, "catch_rate": 0.5, "repeat_rate": 0.5},
        "leave no regular trials",
    ),
    ("survey", {"design": "2afx"}, "did you mean '2afc'"),
    (
        "scoring",
        {"compare": "modle", "budget": 20},
        "Unknown condition column 'modle' in [scoring] compare. Did you mean 'model'",
    ),
    (
        "scoring",
        {"compare": "model", "compare_levels": ["tiny-cnn", "tiny-vg"], "budget": 20},
        "Unknown model 'tiny-vg' in [scoring] compare_levels. Did you mean 'tiny-vgg'",
    ),
    ("scoring", {"compare": "model", "budget": 5}, "smaller than the first look"),
    ("scoring", {"compare": "model"}, "needs a budget"),
    ("scoring", {"compare": "loss", "budget": 20}, "needs two levels to compare"),
]


@pytest.mark.parametrize(
    ("section", "values", "message"),
    BAD,
    ids=[f"{b[0]}-{'-'.join(map(str, b[1].values()))}" for b in BAD],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_bad_value_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys, command, section, values, message
):
    monkeypatch.setenv("PERCALIGN_HOME", str(tmp_path / "home"))
    path = tmp_path / "study.toml"
    path.write_text(_spec(section, values))
    assert main(["study", command, str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert message in err[0] and str(path) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]  # nothing made


def test_a_model_to_train_is_checked_by_its_architecture(tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text(_spec("models", {"name": "zoo-to-train", "train": {"arch": "small-cnn"}}))
    assert main(["study", "check", str(path)]) == 0
    data = copy.deepcopy(GOOD)
    data["models"] = [{"name": "zoo-to-train", "train": {"arch": "small-cnn"}}]
    data["inversion"]["layers"] = ["layer9"]
    path.write_text(dump_spec(data))
    assert main(["study", "check", str(path)]) == 1
    assert "for model 'zoo-to-train'" in capsys.readouterr().err


def test_a_model_name_typo_is_told_the_real_name_not_itself(tmp_path, capsys):
    """The typo is in [[models]]; [trust] models names the real model: the hint points at
    the real one, not at the typo."""
    data = {**GOOD, "models": [{"name": "tiny-cnnn"}, {"name": "tiny-vgg"}]}
    data["trust"] = {"enabled": True, "models": ["tiny-cnn", "tiny-vgg"]}
    path = tmp_path / "study.toml"
    path.write_text(dump_spec(data))
    assert main(["study", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Unknown model 'tiny-cnnn'. Did you mean 'tiny-cnn'" in err
    assert "Did you mean 'tiny-cnnn'" not in err


def test_the_good_spec_passes_the_check(tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text(dump_spec(GOOD))
    assert main(["study", "check", str(path)]) == 0
    assert "every value is valid" in capsys.readouterr().out
