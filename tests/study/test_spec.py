"""study.toml: every field documented, bad specs refused with one clear line."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from percalign._settings import _show
from percalign.cli import main
from percalign.cli.demo import demo_spec_text
from percalign.errors import ConfigError, UnknownNameError
from percalign.inversion import InversionConfig
from percalign.judges import BotSettings, JudgeSettings
from percalign.scoring import Exclusions
from percalign.study.reference import BEGIN, END, reference_text
from percalign.study.spec import SECTIONS, Inversion, load_spec, parse_spec
from percalign.survey import make_plan
from percalign.survey.settings import SurveyDesign
from percalign.trust import TrustSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "study.md"


def _keys(section: str, cls: type) -> list[str]:
    """Every key a section of the spec takes."""
    if cls is Inversion:
        own = [f.name for f in dataclasses.fields(cls) if f.name != "options"]
        taken = [f.name for f in dataclasses.fields(InversionConfig) if f.init]
        return own + [n for n in taken if n not in ("loss", "seed")]
    # [trust] takes the TrustSettings fields but those the study sets from other sections
    return [f.name for f in dataclasses.fields(cls) if f.name not in getattr(cls, "FROM_STUDY", {})]


def test_every_key_of_every_section_is_documented():
    text = DOCS.read_text()
    missing = [
        f"{section}.{key}"
        for section, cls in SECTIONS.items()
        for key in _keys(section, cls)
        if f"`{section}.{key}`" not in text
    ]
    assert not missing, f"undocumented in docs/study.md: {missing}"


def test_the_docs_reference_is_the_generated_one():
    text = DOCS.read_text()
    between = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert between.strip() == reference_text().strip(), (
        "docs/study.md differs from the settings; run `percalign study docs --write docs/study.md`"
    )


# a value other than the default for every InversionConfig field a study may set
OTHER = {
    "steps": 7,
    "optimizer": "sgd",
    "lr": 0.5,
    "schedule": "step",
    "decay_every": 3,
    "decay_factor": 0.5,
    "momentum": 0.5,
    "parameterization": "pixel",
    "p": 1.0,
    "adversary": "ssim",
    "adversarial_lambda": 2.0,
    "fake_relu": True,
    "token_pool": "mean",
    "early_stop": 0.01,
    "stop_at_valid": 0.5,
    "batch_size": 5,
    "share_seeds": True,
    "clamp_seeds": False,
    "fourier_start": "image",
    "fourier_clamp": True,
    "normalize_input": False,
    "record_every": 2,
    "precision": "bf16",
    "channels_last": True,
    "compile": True,
    "fold_batchnorm": False,
}


def test_every_inversion_config_field_can_be_set_in_the_spec():
    settable = set(_keys("inversion", Inversion)) - {f.name for f in dataclasses.fields(Inversion)}
    assert settable == set(OTHER)
    config = parse_spec({**BASE, "inversion": OTHER}).inversion.config("regularizer-free", 3)
    for name, value in OTHER.items():
        assert getattr(config, name) == value, name
    assert config.loss == "regularizer-free" and config.seed == 3
    with pytest.raises(ConfigError, match=r"\[inversion\] precision must be a string"):
        parse_spec({**BASE, "inversion": {"precision": 16}})
    with pytest.raises(ConfigError, match="'precision' parameter of InversionConfig"):
        parse_spec({**BASE, "inversion": {"precision": "fp8"}})
    with pytest.raises(UnknownNameError, match="Did you mean 'early_stop'"):
        parse_spec({**BASE, "inversion": {"erly_stop": 0.1}})


def _new_default(monkeypatch, cls: type, name: str, value) -> None:
    """Change the default of ``cls.name`` where it is defined: the dataclass field (which the
    dataclasses that extend ``cls``, such as a spec section, share; their ``__init__`` holds a
    copy of the default, made when the class was, as it would be from the changed source)."""
    monkeypatch.setattr(cls.__dataclass_fields__[name], "default", value)
    for owner in [cls, *cls.__subclasses__()]:
        names = [f.name for f in dataclasses.fields(owner) if f.init]
        defaults = list(owner.__init__.__defaults__)
        defaults[len(defaults) - len(names) + names.index(name)] = value
        monkeypatch.setattr(owner.__init__, "__defaults__", tuple(defaults))
        monkeypatch.setattr(owner, name, value, raising=False)


def _plan_records() -> list[dict]:
    return [
        {"iri": f"i{t}{s}", "target": f"t{t}", "seed": f"s{t}{s}", "valid": True, "condition": {}}
        for t in range(4)
        for s in range(2)
    ]


#: what the Python API does with each setting when it is not given
API = {
    "k": lambda: JudgeSettings(names=["pixel"]).k,
    "steps": lambda: TrustSettings().config().steps,
    "lapse": lambda: BotSettings(judge="pixel").bots(1)[0].lapse,
    "momentum": lambda: InversionConfig().momentum,
    "min_rt_ms": lambda: Exclusions().min_rt_ms,
    "catch_rate": lambda: make_plan(_plan_records()).settings["catch_rate"],
}


@pytest.mark.parametrize(
    ("cls", "field", "value", "section", "command"),
    [
        (JudgeSettings, "k", 5, "judges", ["judge"]),
        (TrustSettings, "steps", 300, "trust", ["trust"]),
        (BotSettings, "lapse", 0.25, "bots", ["survey", "bots"]),
        (InversionConfig, "momentum", 0.5, "inversion", ["invert"]),
        (Exclusions, "min_rt_ms", 300.0, "exclusions", ["score"]),
        (SurveyDesign, "catch_rate", 0.2, "survey", ["survey", "build"]),
    ],
)
def test_a_default_changed_in_one_place_changes_the_spec_the_cli_the_api_and_the_docs(
    monkeypatch, cls, field, value, section, command
):
    from percalign.cli._app import build_parser

    before = reference_text()
    assert API[field]() != value
    _new_default(monkeypatch, cls, field, value)
    assert API[field]() == value
    spec = parse_spec(BASE)
    got = (
        spec.inversion.config("regularizer-free", 0).momentum
        if section == "inversion"
        else getattr(getattr(spec, section), field)
    )
    assert got == value
    parser = build_parser()
    for word in command:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = action.choices[word]
    if command == ["score"]:
        # score takes a study's declared rules; an unset flag (None) falls back to the default
        from percalign.cli.score import _analysis, _declared

        assert parser.get_default(field) is None
        args = parser.parse_args(["table.csv"])
        args.source = Path("table.csv")
        analysis, _ = _analysis(args, [], *_declared(args, []))
        assert getattr(analysis.rules, field) == value
    else:
        assert parser.get_default(field) == value
    after = reference_text()
    assert f"`{section}.{field}` ({_show(value)})" in after
    assert f"`{section}.{field}` ({_show(value)})" not in before


def _command(argv: list[str]) -> argparse.Namespace:
    from percalign.cli._app import build_parser

    return build_parser().parse_args(argv)


def test_the_judge_and_trust_commands_without_options_are_the_apis_settings():
    """Every JudgeSettings and TrustSettings field the commands take has the API's default,
    and every field the spec does not set from other sections is a key of its section."""
    from percalign.cli.judge import judge_settings
    from percalign.cli.trust import trust_settings
    from percalign.study.spec import setting_names

    assert judge_settings(_command(["judge", "OUT"])) == JudgeSettings()
    settings, config = trust_settings(_command(["trust", "--models", "a,b", "--out", "t"]))
    assert settings == TrustSettings()
    assert config == TrustSettings().config()
    for cls, section in [(JudgeSettings, "judges"), (TrustSettings, "trust")]:
        fields = {f.name for f in dataclasses.fields(cls)}
        from_study = set(getattr(SECTIONS[section], "FROM_STUDY", {}))
        assert fields - from_study <= set(setting_names(section)), section
        parsed = getattr(parse_spec(BASE), section)
        assert {n: getattr(parsed, n) for n in fields - from_study} == {
            n: getattr(cls(), n) for n in fields - from_study
        }


#: another valid value for every JudgeSettings and TrustSettings field with a plain default
CHANGED = {
    JudgeSettings: {"k": 3, "metric": "seed_2afc"},
    TrustSettings: {
        "images": "samples",
        "split": "train",
        "n_images": 40,
        "max_inputs": 30,
        "seeds": "image:1",
        "layer": "layer1",
        "preset": "paper",
        "steps": 200,
        "stop_at_valid": 0.25,
        "batch_size": 64,
        "metric": "seed_2afc",
        "folds": 3,
        "n_boot": 500,
        "seed": 4,
    },
}


@pytest.mark.parametrize(
    ("cls", "name"), [(cls, name) for cls, values in CHANGED.items() for name in values]
)
def test_a_changed_judge_or_trust_default_is_the_commands_default(monkeypatch, cls, name):
    from percalign.cli.judge import judge_settings
    from percalign.cli.trust import trust_settings

    plain = [f.name for f in dataclasses.fields(cls) if f.default_factory is dataclasses.MISSING]
    assert set(CHANGED[cls]) == set(plain)  # every field with a plain default is changed here
    assert getattr(cls(), name) != CHANGED[cls][name]
    _new_default(monkeypatch, cls, name, CHANGED[cls][name])
    if cls is JudgeSettings:
        assert judge_settings(_command(["judge", "OUT"])) == JudgeSettings()
    else:
        settings, _ = trust_settings(_command(["trust", "--models", "a,b", "--out", "t"]))
        assert settings == TrustSettings()
    assert getattr(cls(), name) == CHANGED[cls][name]


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
        ({"models": [{"name": "a", "train": {"epochz": 3}}]}, UnknownNameError, "'epochs'"),
        ({"models": [{"name": "a"}, {"name": "a"}]}, ConfigError, "appears twice"),
        ({}, ConfigError, "at least one [[models]]"),
        ({"models": {"name": "a"}}, ConfigError, "write [[models]]"),
        ({**BASE, "inversion": {"seeds": "pink"}}, UnknownNameError, "Unknown seed type"),
        ({**BASE, "exclusions": {"min_catch_accuracy": 1.5}}, ConfigError, "min_catch_accuracy"),
        ({**BASE, "survey": {"requirements": {"pointer": "pen"}}}, ConfigError, "'pointer'"),
        ({**BASE, "exclusions": {"max_side_share": 2.0}}, ConfigError, "max_side_share"),
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
    from percalign.trust import TrustSettings

    models = [{"name": "tiny-cnn"}, {"name": "tiny-vgg"}]
    spec = parse_spec({"models": models, "trust": {"enabled": True}, "study": {"seed": 3}})
    assert spec.trust.inversion_config(spec.inversion) == TrustSettings(seed=3).config()
    assert TrustSettings().config().stop_at_valid is not None  # the trust IRIs stop once valid
    changed = parse_spec(
        {"models": models, "trust": {"enabled": True, "steps": 40, "batch_size": 8}}
    ).trust.inversion_config(spec.inversion)
    assert (changed.steps, changed.batch_size) == (40, 8)


def test_the_trust_section_is_trust_settings_with_the_studys_own_values():
    from percalign.trust import TrustSettings

    data = {
        "models": [{"name": "tiny-cnn"}, {"name": "tiny-vgg"}],
        "study": {"seed": 7},
        "images": {"source": "samples"},
        "inversion": {"layers": ["layer1", "penultimate"]},
        "scoring": {"n_boot": 300},
        "trust": {"folds": 3},
    }
    spec = parse_spec(data)
    assert isinstance(spec.trust, TrustSettings)
    assert (spec.trust.images, spec.trust.layer) == ("samples", "layer1")
    assert (spec.trust.n_boot, spec.trust.seed, spec.trust.folds) == (300, 7, 3)
    # a section replaced later still carries the study's values
    again = dataclasses.replace(spec, study=dataclasses.replace(spec.study, seed=8))
    assert again.trust.seed == 8
    for key, where in [("seed", "[study] seed"), ("layer", "[inversion] layers")]:
        with pytest.raises(ConfigError, match=rf"\[trust\] {key} is .*{re.escape(where)}"):
            parse_spec({**data, "trust": {key: data["trust"]["folds"]}})
    with pytest.raises(ConfigError, match=r"'folds' parameter of .*Got 1; the closest valid"):
        parse_spec({**data, "trust": {"folds": 1}})


def test_overrides_go_through_the_specs_own_checks(tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text('[[models]]\nname = "tiny-cnn"\n[inversion]\nsteps = 3\n')
    spec = load_spec(path, ["inversion.steps=5", "inversion.precision=bf16", "images.n=2"])
    config = spec.inversion.config("regularizer-free", 0)
    assert (config.steps, config.precision, spec.images.n) == (5, "bf16", 2)
    with pytest.raises(UnknownNameError, match=r"study.toml: .*Did you mean 'steps'"):
        load_spec(path, ["inversion.stepz=5"])
    with pytest.raises(ConfigError, match="steps must be an integer"):
        load_spec(path, ["inversion.steps=many"])
    with pytest.raises(ConfigError, match=r"--set takes SECTION\.KEY=VALUE"):
        load_spec(path, ["steps"])
    with pytest.raises(ConfigError, match=r"has 1 \[\[models\]\] entries"):
        load_spec(path, ["models.3.weights=none"])
    # the spec's own folder would lose the file the overrides were applied to
    assert main(["study", "run", str(path), "--set", "images.n=2"]) == 1
    assert "--set needs another --out" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_study_folder_gets_the_spec_with_the_overrides(tmp_path):
    from percalign.study.pipeline import Pipeline

    path = tmp_path / "study.toml"
    path.write_text('# mine\n[[models]]\nname = "tiny-cnn"\n[survey]\nenabled = false\n')
    spec = load_spec(path, ["images.n=2"])
    (tmp_path / "out").mkdir()
    Pipeline(spec, tmp_path / "out")._write_spec()
    written = load_spec(tmp_path / "out" / "study.toml")
    assert written.images.n == 2 and not written.survey.enabled
    assert "with --set images.n=2" in (tmp_path / "out" / "study.toml").read_text()
    assert path.read_text().startswith("# mine")
