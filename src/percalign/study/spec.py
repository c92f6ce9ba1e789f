"""``study.toml``: one file that says what a study compares and how; validated on load.

Every section is a frozen dataclass whose fields carry their help (``study.sections``): the
reference in ``docs/study.md`` is generated from them (``percalign study docs``), and the
commands that take the same settings (``survey build``, ``survey bots``, ``score``, ``trust``,
``invert``, ``train``) make their options from the same fields. ``[inversion]`` takes every
:class:`~percalign.inversion.InversionConfig` field, ``[exclusions]`` is
:class:`~percalign.scoring.Exclusions`, ``[models] train`` a
:class:`~percalign.training.TrainConfig`. Unknown sections and keys are refused with close
matches; values are type-checked here and checked against the constraint their field
declares (``percalign._settings``), in one message template. What needs the registries
(models, layers, judges, the plan) is checked by :mod:`percalign.study.preflight` before
any work.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from percalign._settings import check_table
from percalign.errors import ConfigError, MissingFileError, PercalignError, unknown_name
from percalign.scoring.exclusions import Exclusions
from percalign.study.sections import (
    Bots,
    Images,
    Inversion,
    Judges,
    ModelEntry,
    Scoring,
    Study,
    Survey,
    Tasks,
    Trust,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "SECTIONS",
    "Bots",
    "Images",
    "Inversion",
    "Judges",
    "ModelEntry",
    "Scoring",
    "Study",
    "StudySpec",
    "Survey",
    "Tasks",
    "Trust",
    "default_setting",
    "load_spec",
    "parse_spec",
    "read_setting",
    "setting_names",
    "setting_paths",
]


#: section name -> its dataclass (``models`` is an array of tables)
SECTIONS: dict[str, type] = {
    "study": Study,
    "models": ModelEntry,
    "images": Images,
    "inversion": Inversion,
    "judges": Judges,
    "survey": Survey,
    "bots": Bots,
    "exclusions": Exclusions,
    "scoring": Scoring,
    "trust": Trust,
    "tasks": Tasks,
}


@dataclass(frozen=True)
class StudySpec:
    """A whole study, as read from ``study.toml`` (see ``docs/study.md``)."""

    study: Study
    models: tuple[ModelEntry, ...]
    images: Images
    inversion: Inversion
    judges: Judges
    survey: Survey
    bots: Bots
    exclusions: Exclusions
    scoring: Scoring
    trust: Trust
    tasks: Tasks = dataclasses.field(default_factory=Tasks)
    source: Path | None = None
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # [trust] analyses the study's images at its first layer, with its bootstrap and seed
        study_sets: dict[str, Any] = {
            "images": self.images.source,
            "layer": self.inversion.layers[0] if self.inversion.layers else self.trust.layer,
            "n_boot": self.scoring.n_boot,
            "seed": self.study.seed,
        }
        if any(getattr(self.trust, k) != v for k, v in study_sets.items()):
            object.__setattr__(self, "trust", dataclasses.replace(self.trust, **study_sets))

    def effective_text(self) -> str | None:
        """The spec file's text with :attr:`overrides` applied (None without overrides)."""
        if not self.overrides or self.source is None:
            return None
        from percalign.study.overrides import apply_overrides, dump_spec

        data = apply_overrides(tomllib.loads(self.source.read_text()), self.overrides)
        header = f"{self.source.name} with --set " + " --set ".join(self.overrides)
        return dump_spec(data, header=header)

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain data (for hashing and manifests)."""
        value = getattr(self, name)
        if name == "models":
            return {"models": [dataclasses.asdict(m) for m in value]}
        return dataclasses.asdict(value)


def setting_names(section: str) -> list[str]:
    """The settings of one section, by name (``[inversion]``: its own and every
    InversionConfig field it takes)."""
    cls = SECTIONS[section]
    if cls is Inversion:
        return Inversion.setting_names()
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in _from_study(cls)]


def _from_study(cls: type) -> dict[str, str]:
    """The fields of a section the study sets from other sections (``[trust]``'s seed...)."""
    return dict(getattr(cls, "FROM_STUDY", {}))


def setting_paths(declared: Sequence[str]) -> list[str]:
    """Declared sections and fields as field paths (``"survey"`` -> ``"survey.design"``...)."""
    paths: list[str] = []
    for item in declared:
        section, _, name = item.partition(".")
        for path in [item] if name else [f"{section}.{n}" for n in setting_names(section)]:
            if path not in paths:
                paths.append(path)
    return paths


def read_setting(spec: StudySpec, path: str) -> Any:
    """The value of the setting ``path`` (``"survey.k"``; ``"models.name"``: a list, one per
    entry), as plain data.

    >>> read_setting(parse_spec({"models": [{"name": "tiny-cnn"}]}), "models.name")
    ['tiny-cnn']
    """
    section, _, name = path.partition(".")
    value = getattr(spec, section)
    if isinstance(value, tuple):
        return [_plain(getattr(v, name)) for v in value]
    return _plain(getattr(value, name))


def default_setting(path: str) -> Any:
    """The default of the setting ``path``, as plain data (as :func:`read_setting` reads it).

    >>> default_setting("survey.k")
    4
    """
    from percalign._settings import default_of

    section, _, name = path.partition(".")
    found = {f.name: f for f in dataclasses.fields(SECTIONS[section])}[name]
    return _plain(default_of(found))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _section(cls: type, data: Any, where: str) -> Any:
    if cls is Inversion:
        return Inversion.from_table(data, where)
    from_study = _from_study(cls)
    for key in data if isinstance(data, dict) else ():
        if key in from_study:
            raise ConfigError(f"{where} {key} is {from_study[key]}; set it there instead.")
    values = check_table(cls, data, where, exclude=tuple(from_study))
    try:
        return cls(**values)
    except ConfigError as exc:  # a rule across fields, checked by the class itself
        raise ConfigError(f"{where}: {exc}") from None


def _check_values(spec: StudySpec) -> None:
    """Range and choice checks that need no heavy imports (the rest happen in the steps)."""
    from percalign.inversion import parse_objectives, parse_seeds

    inv = spec.inversion
    if not spec.models:
        raise ConfigError("A study needs at least one [[models]] entry with a name.")
    seen = set()
    for i, m in enumerate(spec.models):
        if not m.name:
            raise ConfigError(f'[[models]] entry {i + 1} has no name; add name = "...".')
        if m.name in seen:
            raise ConfigError(f"Model {m.name!r} appears twice in [[models]].")
        seen.add(m.name)
        if m.train is not None:
            from percalign.training import TrainConfig

            _section(TrainConfig, m.train, f"[models.train] of {m.name!r}")
    if not inv.layers or not inv.losses:
        raise ConfigError("[inversion] layers and losses must each name at least one entry.")
    parse_objectives(inv.layers)
    parse_seeds(inv.seeds)
    for loss, seeds in (inv.loss_seeds or {}).items():
        if loss not in inv.losses:
            raise unknown_name("loss", loss, inv.losses, where="in [inversion] loss_seeds")
        parse_seeds(seeds)
    for loss in inv.losses:
        inv.config(loss, spec.study.seed)
    if not spec.judges.names:
        raise ConfigError('[judges] names must name at least one judge (e.g. ["ssim"]).')
    adversarial = [loss for loss in spec.inversion.losses if "adversarial" in loss.split("+")]
    if adversarial and set(spec.judges.names) <= {spec.inversion.adversary}:
        raise ConfigError(
            f"[judges] names holds only {spec.inversion.adversary!r}, the adversary of the "
            f"{adversarial[0]!r} loss, which is held out from judging its IRIs; add another "
            "judge to [judges] names."
        )
    sv = spec.survey
    for loss in sv.losses or []:
        if loss not in inv.losses:
            raise unknown_name("loss", loss, inv.losses, where="in [survey] losses")
    from percalign.survey.requirements import Requirements

    Requirements.from_mapping(sv.requirements)
    if spec.bots.n and not spec.survey.enabled:
        raise ConfigError("[bots] n > 0 needs a survey; set [survey] enabled = true.")
    spec.trust.inversion_config(spec.inversion)
    parse_seeds(spec.trust.seeds)
    if spec.trust.enabled and len(spec.trust.models or spec.models) < 2:
        raise ConfigError("[trust] needs two or more models (list them in [trust] models).")


def parse_spec(data: dict[str, Any], source: Path | None = None) -> StudySpec:
    """A validated :class:`StudySpec` from the parsed TOML ``data``."""
    for key in data:
        if key not in SECTIONS:
            raise unknown_name("section", key, SECTIONS, where="in the study spec")
    raw_models = data.get("models", [])
    if not isinstance(raw_models, list):
        raise ConfigError("models must be an array of tables: write [[models]] for each model.")
    models = tuple(
        _section(ModelEntry, m, f"[[models]] entry {i + 1}") for i, m in enumerate(raw_models)
    )
    parts = {
        name: _section(cls, data.get(name, {}), f"[{name}]")
        for name, cls in SECTIONS.items()
        if name != "models"
    }
    spec = StudySpec(models=models, source=source, **parts)
    _check_values(spec)
    return spec


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> StudySpec:
    """Read and validate ``study.toml``, with ``--set`` ``overrides`` applied
    (:mod:`percalign.study.overrides`); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"No study spec at {str(path)!r}; write one (see docs/study.md).")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    try:
        if overrides:
            from percalign.study.overrides import apply_overrides

            data = apply_overrides(data, overrides)
        spec = parse_spec(data, source=path.resolve())
        return dataclasses.replace(spec, overrides=tuple(overrides))
    except PercalignError as exc:
        raise type(exc)(f"{path}: {exc}") from None
