"""Step keys derived from declarations: every declared setting of every step changes its key
unless the step declares it unkeyed, and a study recorded with the previous keys is re-keyed
once, keeping its work and its answers."""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any

import pytest

from percalign.inversion import InversionConfig
from percalign.study.graph import Context, Runner, Step
from percalign.study.sections import Inversion
from percalign.study.spec import SECTIONS, StudySpec, parse_spec, setting_paths
from percalign.study.steps import STEPS

BASE = parse_spec(
    {
        "models": [{"name": "tiny-cnn"}, {"name": "key-test-zoo", "train": {"epochs": 1}}],
        "inversion": {
            "losses": ["regularizer-free", "adversarial"],
            "loss_seeds": {"adversarial": "super-noise"},
        },
        "judges": {"names": ["pixel", "ssim"]},
        "bots": {"n": 2},
        "trust": {"enabled": True},
    }
)


class _Models:
    """Stands in for the loaded models: keys need their identity and labels only."""

    def __init__(self) -> None:
        self.labels: dict[str, tuple[str, str]] = {}

    def id(self, name: str) -> dict[str, Any]:
        return {"name": name, "sha256": "0" * 64}


def _keys(spec: StudySpec, folder) -> dict[str, dict[str, str]]:
    runner = Runner(spec, STEPS, Context(folder, log=lambda _m: None), values={"models": _Models()})
    return copy.deepcopy(runner.plan())


def _base_type(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    return typing.get_origin(hint) or hint


def _other(value: Any, hint: Any) -> Any:
    """A value unlike ``value`` (not necessarily a valid one: keys do not validate)."""
    if value is None:
        kind = _base_type(hint)
        if kind is typing.Literal:
            return "x"
        return {int: 1, float: 0.5, str: "x", bool: True, list: ["x"], dict: {"x": 1}}[kind]
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1 if isinstance(value, int) else value + 0.125
    if isinstance(value, str):
        return value + "-x"
    if isinstance(value, (list, tuple)):
        return [*value, f"{value[0]}-x" if value and isinstance(value[0], str) else "x"]
    if isinstance(value, dict):
        return {k: _other(v, None) for k, v in value.items()} or {"x": 1}
    raise TypeError(f"no other value for {value!r}")


def _replaced(value: Any, name: str, new: Any) -> Any:
    # past the dataclass's own range checks: a key is made from any value
    changed = copy.copy(value)
    object.__setattr__(changed, name, new)
    return changed


def perturbed(spec: StudySpec, path: str, entries: slice = slice(None)) -> StudySpec:
    """``spec`` with the setting ``path`` changed (``models.*``: in the ``entries``)."""
    section, name = path.split(".")
    value = getattr(spec, section)
    if section == "models":
        models = list(value)
        for i, entry in list(enumerate(models))[entries]:
            hint = typing.get_type_hints(type(entry))[name]
            models[i] = _replaced(entry, name, _other(getattr(entry, name), hint))
        return dataclasses.replace(spec, models=tuple(models))
    if isinstance(value, Inversion) and name not in {f.name for f in dataclasses.fields(value)}:
        hint = typing.get_type_hints(InversionConfig)[name]
        options = {**value.options, name: _other(value.option(name), hint)}
        return dataclasses.replace(spec, inversion=_replaced(value, "options", options))
    hint = typing.get_type_hints(type(value))[name]
    return dataclasses.replace(
        spec, **{section: _replaced(value, name, _other(getattr(value, name), hint))}
    )


def _declared() -> list[tuple[Step, str]]:
    return [(s, path) for s in STEPS if s.recorded for path in setting_paths(s.settings)]


def test_every_recorded_step_has_keys_here(tmp_path):
    """So that the perturbations below reach every step."""
    keys = _keys(BASE, tmp_path)
    assert {s.name for s in STEPS if s.recorded} == {n for n, k in keys.items() if k}
    assert set(setting_paths(tuple(SECTIONS))) == {p for s, p in _declared() if s.name == "report"}


@pytest.mark.parametrize(("step", "path"), _declared(), ids=lambda v: getattr(v, "name", v))
def test_a_declared_setting_changes_the_key_unless_unkeyed(tmp_path, step, path):
    before = _keys(BASE, tmp_path).get(step.name, {})
    after = _keys(perturbed(BASE, path), tmp_path).get(step.name, {})
    if step.is_keyed(path):
        assert before != after, f"{path} does not change the key of step {step.name!r}"
    else:
        assert before == after, f"{path} is unkeyed but changes the key of step {step.name!r}"


def test_the_min_catch_accuracy_rebuilds_the_survey(tmp_path):
    """The survey database holds it, so the survey's key does (it was once missed)."""
    before = _keys(BASE, tmp_path)
    after = _keys(perturbed(BASE, "exclusions.min_catch_accuracy"), tmp_path)
    assert before["survey"] != after["survey"]
    assert before["invert"] == after["invert"]


def test_one_models_settings_leave_the_others_runs_alone(tmp_path):
    before = _keys(BASE, tmp_path)
    after = _keys(perturbed(BASE, "models.weights", slice(0, 1)), tmp_path)  # the first model's
    changed = {p for p, k in after["invert"].items() if before["invert"].get(p) != k}
    assert changed == {"tiny-cnn__regularizer-free", "tiny-cnn__adversarial"}


def test_unkeyed_must_be_declared():
    with pytest.raises(ValueError, match="not a declared setting"):
        Step("x", settings=("judges",), unkeyed=("study.device",))


def test_settings_added_later_keep_the_keys_of_studies_recorded_before():
    """A setting declared after studies were recorded (``added``) is keyed only when it is
    set: at its default, the key is the one those studies were recorded with."""
    from percalign.study.graph import keyed_settings

    survey = next(s for s in STEPS if s.name == "survey")
    assert "scoring.compare" in survey.added
    keyed = keyed_settings(survey, BASE)
    assert not any(path in keyed for path in survey.added)
    asked = keyed_settings(survey, perturbed(BASE, "scoring.compare"))
    assert asked["scoring.compare"] == "x"
    with pytest.raises(ValueError, match=r"added 'scoring\.budget' is not a declared setting"):
        Step("x", settings=("judges",), added=("scoring.budget",))
