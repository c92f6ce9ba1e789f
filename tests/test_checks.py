import pytest

from percalign._checks import check_choice, check_float, check_int
from percalign.errors import ConfigError, PercalignError, UnknownNameError, unknown_name


def test_int_message_follows_the_template():
    with pytest.raises(
        ConfigError,
        match=r"The 'steps' parameter of X must be an int in \[1, inf\)\. Got 0; the closest "
        r"valid value is 1\.",
    ):
        check_int("X", "steps", 0, low=1)


def test_a_number_out_of_range_is_told_the_closest_valid_value():
    with pytest.raises(ConfigError, match=r"Got 50; the closest valid value is 20\.$"):
        check_int("X", "n", 50, low=1, high=20)
    with pytest.raises(ConfigError, match=r"Got 0\.7; the closest valid value is 0\.5\.$"):
        check_float("X", "rate", 0.7, 0.0, 0.5)
    with pytest.raises(ConfigError, match=r"Got 0\.$"):  # (0, inf) holds no closest value
        check_float("X", "rate", 0, 0.0, low_open=True)


@pytest.mark.parametrize("value", [1.5, True, "3", None])
def test_int_rejects_non_ints(value):
    with pytest.raises(ConfigError):
        check_int("X", "n", value)


def test_float_bounds_and_open_interval():
    assert check_float("X", "lr", 0.5, low=0.0, low_open=True) == 0.5
    with pytest.raises(ConfigError, match=r"\(0, inf\)"):
        check_float("X", "lr", 0.0, low=0.0, low_open=True)
    with pytest.raises(ConfigError):
        check_float("X", "lr", float("nan"))


def test_choice_suggests_a_close_match():
    with pytest.raises(ConfigError, match="did you mean 'adam'"):
        check_choice("X", "optimizer", "adm", ["adam", "sgd"])


def test_unknown_name_lists_few_choices_and_is_a_lookup_error():
    err = unknown_name("thing", "zzz", ["a", "b"])
    assert isinstance(err, UnknownNameError) and isinstance(err, LookupError)
    assert isinstance(err, PercalignError)
    assert "Choose one of: a, b." in str(err)
