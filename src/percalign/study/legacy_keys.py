"""The step keys of the previous format, kept to re-key a study folder recorded by it.

Keys were once hand-written per step; they are now derived from each step's declaration
(:mod:`percalign.study.graph`). A study recorded before keeps its work: an instance whose
recorded key equals the key below, computed from the current spec, is given its new key
without running again (once; the log says so). These functions are the old ones, unchanged
in what they hash, and nothing else uses them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from percalign.study.graph import Inputs, OldKey
from percalign.study.sections import Inversion, Trust

__all__ = ["OLD_KEYS"]

#: InversionConfig fields always part of the old invert key; the others only when set
_KEYED: tuple[str, ...] = ("parameterization", "optimizer", "lr", "schedule", "steps")
_KEYED += ("batch_size", "adversary", "adversarial_lambda", "stop_at_valid")
#: loop settings keyed by their resolved value when it differed from this one
_LOOP_BEFORE = {"share_seeds": False, "clamp_seeds": True}
_TRUST_FORMAT = 2
#: the minimum display time of every survey built before [survey] could set it
_MIN_DISPLAY_MS = 400
#: the cross-validation folds of every trust analysis before [trust] could set them
_FOLDS = 5


def _inversion_settings(inv: Inversion) -> dict[str, Any]:
    out = {f.name: getattr(inv, f.name) for f in dataclasses.fields(inv)}
    del out["device"], out["options"]
    out.update({name: inv.option(name) for name in _KEYED})
    out.update({k: v for k, v in inv.options.items() if k not in _KEYED})
    loop = inv.config("regularizer-free", 0)
    out["fake_relu"] = loop.fake_relu
    out.update({k: getattr(loop, k) for k, v in _LOOP_BEFORE.items() if getattr(loop, k) != v})
    return out


def _train(inputs: Inputs, name: str) -> tuple[Any, ...]:
    from percalign.training import TrainConfig

    entry = next(m for m in inputs.spec.models if m.name == name)
    return ("train", name, TrainConfig(**(entry.train or {})).to_dict())


def _invert(inputs: Inputs, part: str) -> tuple[Any, ...]:
    from percalign.study.steps.common import run_folders

    spec = inputs.spec
    name, loss, _ = run_folders(spec, inputs.folder)[part]
    images = dataclasses.asdict(spec.images)
    settings = _inversion_settings(spec.inversion)
    return ("invert", inputs.value("models").id(name), images, settings, loss, spec.study.seed)


def _judge(inputs: Inputs, part: str) -> tuple[Any, ...]:
    spec = inputs.spec
    judges = dataclasses.asdict(spec.judges)
    return ("judge", inputs.key("invert", part), judges, spec.study.seed)


def _survey(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    from percalign.scoring.exclusions import Exclusions
    from percalign.study.steps.survey import survey_runs

    spec = inputs.spec
    invert = [inputs.key("invert", part) for part, _ in survey_runs(inputs)]
    settings = dataclasses.asdict(spec.survey)
    if settings["requirements"] is None:  # added later: keyed only when set
        del settings["requirements"]
    if settings["min_display_ms"] == _MIN_DISPLAY_MS:  # not a [survey] setting then
        del settings["min_display_ms"]
    key: tuple[Any, ...] = ("survey", invert, settings, spec.study.seed)
    rules, default = spec.exclusions.attention(), Exclusions().attention()
    if (rules.max_side_share, rules.min_side_trials) != (
        default.max_side_share,
        default.min_side_trials,
    ):
        key += (rules.to_json(),)
    return key


def _bots(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    return ("bots", inputs.key("survey"), dataclasses.asdict(inputs.spec.bots))


def _score(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    from percalign.study.steps.survey import answer_digest

    spec = inputs.spec
    return (
        "score",
        list(inputs.keys("judge").values()),
        inputs.key("survey"),
        answer_digest(inputs.folder / "survey"),
        spec.section("exclusions"),
        spec.section("scoring"),
        spec.judges.metric,
        inputs.value("models").labels,
        spec.bots.judge,
    )


def _trust(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    spec = inputs.spec
    tr, models = spec.trust, inputs.value("models")
    section = dataclasses.asdict(tr)
    for name in Trust.FROM_STUDY:  # set from other sections, as below, since [trust] has them
        del section[name]
    if section["folds"] == _FOLDS:  # not a [trust] setting then
        del section["folds"]
    return (
        "trust",
        _TRUST_FORMAT,
        [models.id(n) for n in (tr.models or [m.name for m in spec.models])],
        section,
        tr.judges or spec.judges.names,
        spec.images.source,
        tr.inversion_config(spec.inversion).to_dict(),
        spec.inversion.layers[0],
        spec.scoring.n_boot,
    )


def _report(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    from percalign import _provenance

    return ("report", inputs.every_key(), _provenance.code_version())


#: the old key function of each recorded step
OLD_KEYS: dict[str, OldKey] = {
    "train": _train,
    "invert": _invert,
    "judge": _judge,
    "survey": _survey,
    "bots": _bots,
    "score": _score,
    "trust": _trust,
    "report": _report,
}
