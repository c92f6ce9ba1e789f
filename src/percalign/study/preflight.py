"""Checks before any work: every value of ``study.toml`` that a later step would refuse.

:func:`~percalign.study.spec.load_spec` checks what needs no heavy imports (types, ranges,
choices, how the sections fit together). :func:`check_study` adds what needs the registries:
model names, zoo names and recipe options of the models to train, the layers of every model,
judge names, and whether the survey's plan can be made from the study's targets. ``study
run`` calls it before training anything, and ``study check`` alone; each refusal is one line
that names the setting and, where there is one, the closest valid value.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from percalign.errors import ConfigError, PercalignError, unknown_name
from percalign.study.spec import ModelEntry, StudySpec

__all__ = ["check_study"]

#: what `percalign score --table` and the report can group by
_CONDITIONS = ("model", "layer", "loss", "seed_type", "architecture", "training")


def check_study(spec: StudySpec) -> None:
    """Refuse ``spec`` if a step would refuse one of its values (one line each, naming the
    spec's file when it has one).

    Raises:
        ConfigError: a value that no step would accept (the message names the setting).
        UnknownNameError: an unknown model, layer or judge (close matches are named).
    """
    try:
        _check(spec)
    except PercalignError as exc:
        if spec.source is None:
            raise
        raise type(exc)(f"{spec.source}: {exc}") from None


def _check(spec: StudySpec) -> None:
    trained = {m.name for m in spec.models if m.train is not None}
    for i, entry in enumerate(spec.models):
        where = f"[[models]] entry {i + 1} ({entry.name!r})"
        layers = _train_layers(entry, where) if entry.train is not None else _layers(entry)
        _check_layers(spec, entry.name, layers)
    for name in spec.trust.models:
        if name not in {m.name for m in spec.models}:
            raise unknown_name(
                "model", name, [m.name for m in spec.models], where="in [trust] models"
            )
    judges = [("[judges] names", n) for n in spec.judges.names]
    judges += [("[trust] judges", n) for n in spec.trust.judges]
    if spec.bots.n:
        judges.append(("[bots] judge", spec.bots.judge))
    if any("adversarial" in loss.split("+") for loss in spec.inversion.losses):
        judges.append(("[inversion] adversary", spec.inversion.adversary))
    for where, name in judges:
        _check_judge(name, where, trained)
    _check_scoring(spec)
    if spec.survey.enabled:
        _check_plan(spec)


# ------------------------------------------------------------------------------------ models
def _zoo_name(name: str) -> str:
    """The closest valid zoo name to ``name``."""
    fixed = re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip("._-")
    return fixed or "model"


def _train_layers(entry: ModelEntry, where: str) -> tuple[set[str], bool]:
    """The module paths of the architecture a model to train will have, and whether it has a
    classifier head; refuses a name the zoo cannot hold and options its recipe ignores."""
    from percalign.models.archs import build_arch
    from percalign.training import TrainConfig
    from percalign.training.zoo import valid_name

    if not valid_name(entry.name):
        raise ConfigError(
            f"{where}: a model to train needs a zoo name of letters, digits, '.', '_' or '-'; "
            f"got {entry.name!r}; the closest valid name is {_zoo_name(entry.name)!r}."
        )
    cfg = TrainConfig(**(entry.train or {}))  # its fields and ranges: checked by load_spec
    try:
        cfg.check_options(entry.train or {})
    except ConfigError as exc:
        raise ConfigError(f"[models.train] of {entry.name!r}: {exc}") from None
    with torch.device("meta"):  # the shape of the network, no memory, no initialization
        net, head, _ = build_arch(cfg.arch, 3, 10, cfg.width, cfg.image_size)
    return {n for n, _ in net.named_modules() if n}, bool(head)


def _layers(entry: ModelEntry) -> tuple[set[str], bool] | None:
    """The module paths of a model to load, and whether it has a classifier head (None when
    the model cannot be built without its weights); refuses an unknown name."""
    from percalign.models import load

    try:
        with torch.device("meta"):
            model = load(entry.name, weights="none")
    except PercalignError:
        raise
    except Exception:  # a model that cannot be built on "meta" is checked when it loads
        return None
    if not model.spec.hookable:
        return set(), False
    return {n for n, _ in model.module.named_modules() if n}, model.spec.head is not None


def _check_layers(spec: StudySpec, name: str, found: tuple[set[str], bool] | None) -> None:
    from percalign.inversion import parse_objectives
    from percalign.models.model import OUTPUT, PENULTIMATE

    if found is None:
        return
    modules, has_head = found
    for objective in parse_objectives(spec.inversion.layers):
        for layer in objective.layers:
            if layer == OUTPUT or (layer == PENULTIMATE and has_head) or layer in modules:
                continue
            if layer == PENULTIMATE:
                raise ConfigError(
                    f"[inversion] layers: model {name!r} has no classifier head, so "
                    "'penultimate' is undefined; name a module path (`percalign models show`)."
                )
            raise unknown_name(
                "layer",
                layer,
                modules,
                where=f"in [inversion] layers for model {name!r}",
                hint=f"List them with `percalign models show {name} --all`.",
            )


# ------------------------------------------------------------------------ judges, scoring
def _check_judge(name: str, where: str, trained: set[str]) -> None:
    from percalign.judges.registry import find_judge

    try:
        find_judge(name)
    except PercalignError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if name.startswith("model:"):  # its model must be known, or trained by this study
        model = name.split(":")[1]
        if model not in trained:
            from percalign.models import load

            try:
                with torch.device("meta"):
                    load(model, weights="none")
            except PercalignError as exc:
                raise type(exc)(f"{where} {name!r}: {exc}") from None


def _check_scoring(spec: StudySpec) -> None:
    sc = spec.scoring
    for where, column in [
        *[("[scoring] by", c) for c in sc.by],
        ("[scoring] table_rows", sc.table_rows),
        ("[scoring] table_columns", sc.table_columns),
    ]:
        if column not in _CONDITIONS:
            raise unknown_name("column", column, _CONDITIONS, where=f"in {where}")
    _check_questions(spec)


def _survey_levels(spec: StudySpec) -> dict[str, list[str]]:
    """The condition columns a survey's answers carry, and the study's levels of each."""
    from percalign.inversion.seeds import parse_seeds

    losses = list(spec.survey.losses or spec.inversion.losses)
    seeds = sorted({s.kind for loss in losses for s in parse_seeds(spec.inversion.seeds_for(loss))})
    return {
        "model": [m.name for m in spec.models],
        "loss": losses,
        "layer": [str(layer) for layer in spec.inversion.layers],
        "seed_type": seeds,
    }


def _check_questions(spec: StudySpec) -> None:
    """A sequential survey's questions: columns its answers have, levels the study makes."""
    sc = spec.scoring
    levels = _survey_levels(spec)
    for where, column in [("compare", sc.compare), ("halfwidth_of", sc.halfwidth_of)]:
        if column is None or (where == "halfwidth_of" and sc.halfwidth is None):
            continue
        if column not in levels:
            raise unknown_name(
                "condition column",
                column,
                levels,
                where=f"in [scoring] {where}",
                hint="A survey's answers carry these columns.",
            )
    if sc.compare is not None:
        for level in sc.compare_levels or ():
            if level not in levels[sc.compare]:
                raise unknown_name(
                    sc.compare, level, levels[sc.compare], where="in [scoring] compare_levels"
                )
        if not sc.compare_levels and len(levels[sc.compare]) < 2:
            raise ConfigError(
                f"[scoring] compare = {sc.compare!r} needs two levels to compare; the survey "
                f"has {levels[sc.compare]}. Compare another column, or add levels."
            )


# ----------------------------------------------------------------------------------- survey
def _check_plan(spec: StudySpec) -> None:
    """What the survey's plan needs from the study's runs: enough targets per run."""
    sv, n = spec.survey, spec.images.n
    need: dict[str, Any] = {}
    if sv.design == "2afc" and sv.foil == "other-target":
        need = {"targets": 2, "why": "the other-target foil needs a second target per run"}
    elif sv.design in ("matching", "clustering"):
        need = {"targets": sv.k, "why": f"a {sv.design} trial shows k = {sv.k} targets of a run"}
    if need and n < need["targets"]:
        raise ConfigError(
            f"[survey] design {sv.design!r}: {need['why']}, and [images] n = {n}; the closest "
            f"valid values are [images] n = {need['targets']}"
            + (f" or [survey] k = {max(2, n)}" if "k =" in need["why"] and n >= 2 else "")
            + "."
        )
