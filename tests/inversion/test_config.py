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
    cfg = InversionConfig(optimizer="adam")
    d = cfg.to_dict()
    assert (
        d["lr"] == 0.02
        and d["record_every"] == 50
        and d["loss_spec"]["name"] == ("regularizer-free")
    )
    assert InversionConfig().resolved_lr == 1.0  # the paper's step size


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
        ("batch_size", 0, "'batch_size' parameter"),
        ("seed", -1, "'seed' parameter"),
        ("precision", "fp16", "'precision' parameter"),
        ("loss", "regulariser-free", "Did you mean 'regularizer-free'"),
    ],
)
def test_bad_settings_are_named(field, value, message):
    with pytest.raises((ConfigError, UnknownNameError), match=message):
        InversionConfig(**{field: value})
