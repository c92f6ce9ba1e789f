import pytest

from percalign.errors import ConfigError, UnknownNameError
from percalign.inversion import InversionConfig, LossSpec, Objective, parse_objectives


def test_loss_families_carry_the_paper_weights():
    p = LossSpec.parse("penalties")
    assert p.representation_weight == 10.0
    assert p.penalties == (("tv", 5e-4), ("blur", 5e-4), ("l1", 5e-5))
    assert LossSpec.parse("penalties-tv-l6").penalties == (("tv", 5e-4), ("l6", 1.0))
    combo = LossSpec.parse("fourier+transforms")
    assert combo.parameterization == "fourier" and combo.transforms
    assert LossSpec.parse("adversarial").adversarial
    with pytest.raises(UnknownNameError, match="Did you mean 'fourier'"):
        LossSpec.parse("fourrier")


def test_objectives_parse_weights():
    obj = Objective.parse("0.5*layer3+layer4")
    assert obj.terms == (("layer3", 0.5), ("layer4", 1.0)) and obj.name == "0.5*layer3+layer4"
    assert [o.name for o in parse_objectives(["a", "b"])] == ["a", "b"]
    assert Objective.parse({"x": 2.0}).name == "2*x"
    for bad in ("", "x*layer", "0*layer"):
        with pytest.raises(ConfigError):
            Objective.parse(bad)
    with pytest.raises(ConfigError, match="No layers"):
        parse_objectives([])


def test_config_resolves_and_records_defaults():
    cfg = InversionConfig(optimizer="adam", parameterization="pixel", steps=5000)
    d = cfg.to_dict()
    assert (
        d["lr"] == 0.02
        and d["record_every"] == 50
        and d["loss_spec"]["name"] == ("regularizer-free")
        and d["preset"] is None
        and d["parameterization"] == "pixel"
        and d["parameterization_eps"] == 0.0
    )
    paper = InversionConfig(
        optimizer="normalized-gd",
        parameterization="pixel",
        steps=5000,
        schedule="constant",
        fake_relu=True,
        share_seeds=True,
        clamp_seeds=False,
    )
    assert paper.resolved_lr == 1.0 and paper.preset == "paper"  # the paper's step size
    assert InversionConfig(optimizer="normalized-gd").resolved_lr == 4.0  # on logits


def test_defaults_are_the_default_preset_and_presets_name_every_setting():
    default = InversionConfig()
    assert default.to_dict() == InversionConfig.from_preset("default").to_dict()
    assert default.preset == "default"
    d = default.to_dict()
    assert d["preset"] == "default" and d["parameterization"] == "sigmoid"
    assert d["parameterization_eps"] == 1e-3 and d["lr"] == 0.1
    paper = InversionConfig.from_preset("paper")
    assert (paper.parameterization, paper.optimizer, paper.resolved_lr, paper.steps) == (
        "pixel",
        "normalized-gd",
        1.0,
        5000,
    )
    assert paper.schedule == "constant" and paper.early_stop is None
    assert InversionConfig.from_preset("paper", steps=10).preset is None
    # the Fourier family brings its own parameterization, whatever the field says
    assert InversionConfig(loss="fourier").resolved_parameterization == "fourier"


def test_unknown_preset_and_parameterization_name_close_matches():
    with pytest.raises(UnknownNameError, match="Did you mean 'paper'"):
        InversionConfig.from_preset("papr")
    with pytest.raises(UnknownNameError, match="Did you mean 'sigmoid'"):
        InversionConfig(parameterization="sigmoidal")
    with pytest.raises(UnknownNameError, match="loss family 'fourier'"):
        InversionConfig(parameterization="fourier")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("steps", 0, "'steps' parameter"),
        ("steps", 2.5, "'steps' parameter"),
        ("optimizer", "adamw", "did you mean 'adam'"),
        ("lr", -1.0, "'lr' parameter"),
        ("schedule", "linear", "'schedule' parameter"),
        ("decay_factor", 0.0, "'decay_factor' parameter"),
        ("p", 0.5, "'p' parameter"),
        ("adversarial_lambda", "often", "'adversarial_lambda' parameter"),
        ("early_stop", -1.0, "'early_stop' parameter"),
        ("stop_at_valid", 0.0, "'stop_at_valid' parameter"),
        ("stop_at_valid", 1.5, "'stop_at_valid' parameter"),
        ("batch_size", 0, "'batch_size' parameter"),
        ("seed", -1, "'seed' parameter"),
        ("precision", "fp16", "'precision' parameter"),
        ("loss", "regulariser-free", "Did you mean 'regularizer-free'"),
    ],
)
def test_bad_settings_are_named(field, value, message):
    with pytest.raises((ConfigError, UnknownNameError), match=message):
        InversionConfig(**{field: value})
