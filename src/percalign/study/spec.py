"""``study.toml``: one file that says what a study compares and how; validated on load.

Every section is a frozen dataclass; every field is documented in ``docs/study.md`` (a test
fails when one is not). Unknown sections and keys are refused with close matches; values are
type-checked here and range-checked by the component that uses them (``InversionConfig``,
``make_plan``, ``Exclusions``, ``TrainConfig``), so one message template covers each.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from percalign._checks import check_choice, check_float, check_int
from percalign.errors import ConfigError, MissingFileError, PercalignError, unknown_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SECTIONS", "StudySpec", "load_spec", "parse_spec"]


@dataclass(frozen=True)
class Study:
    name: str = "study"
    description: str = ""
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class ModelEntry:
    name: str = ""
    weights: str | None = None
    architecture: str | None = None
    training: str | None = None
    train: dict[str, Any] | None = None


@dataclass(frozen=True)
class Images:
    source: str = "digits"
    split: str = "test"
    n: int = 24
    null_images: int = 256


@dataclass(frozen=True)
class Inversion:
    layers: list[str] = field(default_factory=lambda: ["penultimate"])
    seeds: str = "super-noise,image"
    losses: list[str] = field(default_factory=lambda: ["regularizer-free"])
    loss_seeds: dict[str, str] | None = None
    preset: str = "default"
    parameterization: str | None = None
    optimizer: str | None = None
    steps: int | None = None
    lr: float | None = None
    schedule: str | None = None
    batch_size: int = 64
    fake_relu: bool = False
    adversary: str = "lpips-alex"
    adversarial_lambda: float | str | None = None
    stop_at_valid: float | None = None
    channels_last: bool = False
    validity_percentile: float = 1.0
    device: str | None = None

    def seeds_for(self, loss: str) -> str:
        """The seed types of ``loss``'s runs: its ``loss_seeds`` entry, else ``seeds``."""
        return (self.loss_seeds or {}).get(loss, self.seeds)

    def config(self, loss: str, seed: int, steps: int | None = None) -> Any:
        """The :class:`~percalign.inversion.InversionConfig` of these settings for ``loss``.

        The optimizer settings are the preset's, overridden by those the spec sets.
        """
        from percalign.inversion import InversionConfig

        return InversionConfig.from_options(
            self.preset,
            parameterization=self.parameterization,
            optimizer=self.optimizer,
            lr=self.lr,
            schedule=self.schedule,
            steps=self.steps if steps is None else steps,
            loss=loss,
            batch_size=self.batch_size,
            fake_relu=self.fake_relu,
            adversary=self.adversary,
            adversarial_lambda=self.adversarial_lambda,
            stop_at_valid=self.stop_at_valid,
            channels_last=self.channels_last,
            seed=seed,
        )


@dataclass(frozen=True)
class Judges:
    names: list[str] = field(default_factory=lambda: ["ssim", "ms-ssim", "pixel"])
    k: int = 4
    metric: str = "other_2afc"


@dataclass(frozen=True)
class Survey:
    enabled: bool = True
    design: str = "2afc"
    foil: str = "other-target"
    k: int = 4
    trials_per_participant: int = 40
    judgments_per_item: int = 5
    catch_rate: float = 0.1
    repeat_rate: float = 0.05
    include_invalid: bool = False
    practice: int = 2
    database: str | None = None
    losses: list[str] | None = None


@dataclass(frozen=True)
class Bots:
    n: int = 0
    judge: str = "ssim"
    lapse: float = 0.1
    temperature: float = 0.0


@dataclass(frozen=True)
class Exclusions:
    min_catch_accuracy: float = 0.8
    min_answers: int = 1
    min_rt_ms: float = 250.0
    max_fast_share: float = 0.2
    require_complete: bool = True


@dataclass(frozen=True)
class Scoring:
    by: list[str] = field(default_factory=lambda: ["model"])
    table_rows: str = "architecture"
    table_columns: str = "training"
    n_boot: int = 2000


@dataclass(frozen=True)
class Trust:
    enabled: bool = False
    models: list[str] = field(default_factory=list)
    judges: list[str] = field(default_factory=list)
    n_images: int | None = None
    max_inputs: int | None = 100
    split: str = "test"
    seeds: str = "super-noise:2,image:2"
    preset: str = "default"
    steps: int | None = None
    stop_at_valid: float | None = None
    batch_size: int | None = None
    metric: str = "other_2afc"

    def config(self, inversion: Inversion, seed: int) -> Any:
        """The :class:`~percalign.inversion.InversionConfig` of the trust inversions: the
        preset with ``steps``, ``stop_at_valid`` and ``batch_size`` on top (each, when unset,
        ``percalign trust``'s default: :func:`percalign.trust.default_config`), fake-ReLU from
        ``[inversion]``."""
        from percalign.inversion import InversionConfig
        from percalign.trust.analysis import BATCH_SIZE, STEPS, STOP_AT_VALID

        return InversionConfig.from_options(
            self.preset,
            steps=STEPS if self.steps is None else self.steps,
            stop_at_valid=STOP_AT_VALID if self.stop_at_valid is None else self.stop_at_valid,
            batch_size=BATCH_SIZE if self.batch_size is None else self.batch_size,
            fake_relu=inversion.fake_relu,
            channels_last=inversion.channels_last,
            seed=seed,
        )


@dataclass(frozen=True)
class Tasks:
    targets: int = 0
    cpus: float = 1.0
    gpus: float | None = None
    retries: int = 3


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
    tasks: Tasks = field(default_factory=Tasks)
    source: Path | None = None

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain data (for hashing and manifests)."""
        value = getattr(self, name)
        if name == "models":
            return {"models": [dataclasses.asdict(m) for m in value]}
        return dataclasses.asdict(value)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (inner,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint) if h is not type(None))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(hint)[0]).split(' ', 1)[1]}s"
    if origin is dict:
        return "a table"
    return names.get(hint, str(hint))


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table ([{where.split('[')[-1]}); got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        if key not in names:
            raise unknown_name("key", key, names, where=f"in {where}")
        if not _type_ok(value, hints[key]):
            raise ConfigError(
                f"{where} {key} must be {_type_name(hints[key])}; got {value!r} "
                f"({type(value).__name__})."
            )
    return cls(**data)


def _check_values(spec: StudySpec) -> None:
    """Range and choice checks that need no heavy imports (the rest happen in the steps)."""
    from percalign.inversion import parse_objectives, parse_seeds
    from percalign.survey.design import DESIGNS, FOILS

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
    check_int("[images]", "n", spec.images.n, low=1)
    check_int("[images]", "null_images", spec.images.null_images, low=2)
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
    check_float("[inversion]", "validity_percentile", inv.validity_percentile, 0.0, 100.0, True)
    check_int("[judges]", "k", spec.judges.k, low=2)
    check_choice("[judges]", "metric", spec.judges.metric, ("seed_2afc", "other_2afc", "matching"))
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
    check_choice("[survey]", "design", sv.design, DESIGNS)
    check_choice("[survey]", "foil", sv.foil, FOILS)
    check_int("[survey]", "k", sv.k, low=2)
    check_int("[survey]", "trials_per_participant", sv.trials_per_participant, low=1)
    check_int("[survey]", "judgments_per_item", sv.judgments_per_item, low=1)
    check_float("[survey]", "catch_rate", sv.catch_rate, 0.0, 0.5)
    check_float("[survey]", "repeat_rate", sv.repeat_rate, 0.0, 0.5)
    check_int("[survey]", "practice", sv.practice, low=0)
    check_int("[bots]", "n", spec.bots.n, low=0)
    if spec.bots.n and not spec.survey.enabled:
        raise ConfigError("[bots] n > 0 needs a survey; set [survey] enabled = true.")
    check_float("[bots]", "lapse", spec.bots.lapse, 0.0, 1.0)
    check_float("[bots]", "temperature", spec.bots.temperature, low=0.0)
    from percalign.scoring.exclusions import Exclusions as Rules

    Rules(**dataclasses.asdict(spec.exclusions))
    check_int("[scoring]", "n_boot", spec.scoring.n_boot, low=100)
    check_choice("[trust]", "metric", spec.trust.metric, ("seed_2afc", "other_2afc"))
    if spec.trust.steps is not None:
        check_int("[trust]", "steps", spec.trust.steps, low=1)
    if spec.trust.max_inputs is not None:
        check_int("[trust]", "max_inputs", spec.trust.max_inputs, low=2)
    spec.trust.config(spec.inversion, spec.study.seed)
    parse_seeds(spec.trust.seeds)
    check_int("[tasks]", "targets", spec.tasks.targets, low=0)
    check_float("[tasks]", "cpus", spec.tasks.cpus, low=0.0, low_open=True)
    if spec.tasks.gpus is not None:
        check_float("[tasks]", "gpus", spec.tasks.gpus, low=0.0)
    check_int("[tasks]", "retries", spec.tasks.retries, low=0)
    if spec.trust.enabled and len(spec.trust.models or spec.models) < 2:
        raise ConfigError("[trust] needs two or more models (list them in [trust] models).")
    unknown = set(spec.trust.models) - {m.name for m in spec.models}
    if unknown:
        raise unknown_name(
            "model", sorted(unknown)[0], [m.name for m in spec.models], where="in [trust] models"
        )


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


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate ``study.toml``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"No study spec at {str(path)!r}; write one (see docs/study.md).")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    try:
        return parse_spec(data, source=path.resolve())
    except PercalignError as exc:
        raise type(exc)(f"{path}: {exc}") from None
