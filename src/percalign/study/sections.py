"""The sections of ``study.toml``: one frozen dataclass each, every field with its help.

The fields are the one definition of each setting (``percalign._settings``): the spec's
checks, the commands' options and the reference in ``docs/study.md`` are made from them.
``[inversion]`` also takes every :class:`~percalign.inversion.InversionConfig` field, and
``[exclusions]`` is :class:`~percalign.scoring.Exclusions` itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from percalign._settings import Interval, OneOf, check_settings, check_table, default_of, setting
from percalign.data.images import SPLITS
from percalign.errors import unknown_name
from percalign.inversion.config import PRESET_FIELDS, InversionConfig
from percalign.judges.bots import BotSettings
from percalign.judges.settings import JudgeSettings
from percalign.scoring.stopping import Stopping
from percalign.survey.settings import SurveyDesign
from percalign.trust.settings import TrustSettings

__all__ = [
    "STUDY_SETS",
    "Bots",
    "Images",
    "Inversion",
    "Judges",
    "ModelEntry",
    "Scoring",
    "Study",
    "Survey",
    "Tasks",
    "Trust",
]


class _Checked:
    """A section checks the constraints its fields declare when it is made."""

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class Study(_Checked):
    name: str = setting(
        default="study",
        help=("Title of the report."),
    )
    description: str = setting(
        default="",
        help=("One paragraph under the title."),
    )
    seed: int = setting(
        default=0,
        help=(
            "Seed of every random choice (targets, seeds of the IRIs, survey plan, simulated "
            "participants, bootstrap)."
        ),
    )
    device: str = setting(
        default="auto",
        help=(
            "Where every model step runs (training, inversion, judges, trust): `auto` (the first "
            "CUDA GPU when one is visible, else the CPU), `cpu`, `cuda`, `cuda:1`... A device "
            "that is not there is refused before any work. Not part of any step's key; `study run "
            "--device` overrides it."
        ),
    )


@dataclass(frozen=True)
class ModelEntry(_Checked):
    name: str = setting(
        default="",
        help=(
            "A name `percalign models list` knows (registered models, the zoo, torchvision names, "
            "`timm:NAME`), or a new zoo name when `train` is given."
        ),
        shown="required",
    )
    weights: str | None = setting(
        default=None,
        help=(
            "As `--weights` of `percalign invert`: `none`, an enum name, a path or URL, `TAG:PATH`."
        ),
        shown="the model's own",
    )
    architecture: str | None = setting(
        default=None,
        help=("Row label of the paper-style table."),
        shown="from the zoo, else the name",
    )
    training: str | None = setting(
        default=None,
        help=("Column label of that table."),
        shown="from the zoo recipe, else `pretrained`",
    )
    train: dict[str, Any] | None = setting(
        default=None,
        help=(
            "Train this model into the zoo first when it is not there. The keys are those of "
            "`percalign train` (`recipe`, `epochs`, `eps`, `pgd_steps`, `augment`, `dataset`, "
            "`arch`, `probe_epochs`, `eval_images`, ...; see `TrainConfig`). A zoo model of this "
            "name trained with other settings is refused."
        ),
    )


@dataclass(frozen=True)
class Images(_Checked):
    source: str = setting(
        default="digits",
        help=("`digits`, `samples`, or a folder/glob of images."),
    )
    split: str = setting(
        default="test",
        help=("`all`, `train` or `test` (digits)."),
        check=OneOf(SPLITS),
    )
    n: int = setting(
        default=24,
        help=("Number of target images (a seeded choice)."),
        check=Interval(int, 1),
    )
    null_images: int = setting(
        default=256,
        help=("Natural images whose pairwise distances make the validity null."),
        check=Interval(int, 2),
    )


#: InversionConfig fields a study sets itself (per run), so ``[inversion]`` does not take them
STUDY_SETS = ("loss", "seed")


@dataclass(frozen=True)
class Inversion(_Checked):
    """``[inversion]``: the study's own fields below, and every
    :class:`~percalign.inversion.InversionConfig` field (but ``loss`` and ``seed``, which the
    study sets per run) in ``options``: those the spec sets. The optimizer fields a preset
    fixes default to the preset's; ``batch_size`` defaults to :data:`BATCH_SIZE`.
    """

    layers: list[str] = setting(
        factory=lambda: ["penultimate"],
        help=('Layer objectives; a weighted sum such as `"0.5*layer3+layer4"` is one objective.'),
    )
    seeds: str = setting(
        default="super-noise,image",
        help=("Seed types, each optionally `:COUNT`."),
    )
    losses: list[str] = setting(
        factory=lambda: ["regularizer-free"],
        help=(
            "Loss families, one run per model and loss (`regularizer-free`, `transforms`, "
            "`fourier`, `penalties`, `penalties-tv`, `penalties-blur`, `penalties-l1`, "
            "`penalties-tv-l6`, `adversarial`, combined with `+`)."
        ),
    )
    loss_seeds: dict[str, str] | None = setting(
        default=None,
        help=(
            "Seed types for some loss families, overriding `seeds`, as `{ adversarial = "
            '"super-noise" }` (the paper compares loss families from noise seeds).'
        ),
    )
    preset: str = setting(
        default="default",
        help=(
            "The loop's settings to start from: `default` (sigmoid pixels, Adam 0.1 with "
            "cosine decay, 2000 steps; its saved IRIs pass the validity gate from every seed "
            "type on every model of the digits zoo in `benchmarks/convergence.py`) or `paper` "
            "(the authors' loop, `docs/fidelity.md`: clamped pixels, normalized gradient steps "
            "of 1.0, 5000 steps, fake ReLU, one raw noise seed shared by all targets). "
            "`parameterization`, `optimizer`, `steps`, `lr`, `schedule`, `fake_relu`, "
            "`share_seeds` and `clamp_seeds` override it."
        ),
    )
    validity_percentile: float = setting(
        default=1.0,
        help=("An IRI is valid when its distance is below this percentile of the validity null."),
        check=Interval(float, 0.0, 100.0, low_open=True),
    )
    device: str | None = setting(
        default=None,
        help=(
            "The device of the invert, judge and trust steps only, if they should differ from "
            "`study.device`; not part of any step's key. On Ray, each task runs on the GPU Ray "
            "gives it (`tasks.gpus`), else on the CPU; `cuda` on a cluster without GPUs is "
            "refused."
        ),
        shown="`study.device`",
    )
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    #: a study inverts more images at once than a single ``percalign invert``
    BATCH_SIZE: ClassVar[int] = 64

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """The defaults of the InversionConfig fields in ``[inversion]`` (None: the preset's)."""
        return {
            **{name: None for name in PRESET_FIELDS},
            "batch_size": cls.BATCH_SIZE,
        }

    @classmethod
    def from_table(cls, data: Any, where: str = "[inversion]") -> Inversion:
        """The section from its TOML table: own keys and InversionConfig keys, type-checked."""
        if not isinstance(data, dict):
            check_table(cls, data, where)
        own = {f.name for f in dataclasses.fields(cls) if f.name != "options"}
        mine = {k: v for k, v in data.items() if k in own}
        rest = {k: v for k, v in data.items() if k not in own}
        config_keys = [f.name for f in _config_fields()]
        for key in rest:
            if key not in config_keys:
                names = sorted(own) + config_keys
                raise unknown_name("key", key, names, where=f"in {where}")
        check_table(cls, mine, where, exclude=("options",))
        check_table(InversionConfig, rest, where, exclude=STUDY_SETS)
        return cls(**mine, options=rest)

    def option(self, name: str) -> Any:
        """The value of InversionConfig field ``name`` here: set, else the section's default."""
        if name in self.options:
            return self.options[name]
        defaults = self.option_defaults()
        if name in defaults:
            return defaults[name]
        return default_of(InversionConfig.__dataclass_fields__[name])

    @classmethod
    def setting_names(cls) -> list[str]:
        """Every setting of the section: its own fields and the InversionConfig fields."""
        own = [f.name for f in dataclasses.fields(cls) if f.name != "options"]
        return own + [f.name for f in _config_fields()]

    def __getattr__(self, name: str) -> Any:
        # an InversionConfig field reads as its value here (``inversion.steps``)
        if name in _config_names():
            return self.option(name)
        raise AttributeError(name)

    def seeds_for(self, loss: str) -> str:
        """The seed types of ``loss``'s runs: its ``loss_seeds`` entry, else ``seeds``."""
        return (self.loss_seeds or {}).get(loss, self.seeds)

    def config(self, loss: str, seed: int, steps: int | None = None) -> InversionConfig:
        """The :class:`~percalign.inversion.InversionConfig` of these settings for ``loss``.

        The optimizer settings are the preset's, overridden by those the spec sets.
        """
        options = {f.name: self.option(f.name) for f in _config_fields()}
        if steps is not None:
            options["steps"] = steps
        return InversionConfig.from_options(self.preset, **options, loss=loss, seed=seed)


def _config_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(InversionConfig) if f.init and f.name not in STUDY_SETS]


def _config_names() -> frozenset[str]:
    return frozenset(f.name for f in _config_fields())


@dataclass(frozen=True)
class Judges(JudgeSettings):
    """``[judges]``: the :class:`~percalign.judges.settings.JudgeSettings` fields."""


@dataclass(frozen=True)
class Survey(SurveyDesign):
    """``[survey]``: the :class:`~percalign.survey.settings.SurveyDesign` fields, and the
    study's own below."""

    def design_settings(self) -> SurveyDesign:
        """The plan's settings, as ``make_plan`` takes them."""
        names = [f.name for f in dataclasses.fields(SurveyDesign)]
        return SurveyDesign(**{name: getattr(self, name) for name in names})

    enabled: bool = setting(
        default=True,
        help=("Build the survey (`STUDY/survey`, served by `percalign survey serve`)."),
    )
    practice: int = setting(
        default=2,
        help=("Practice trials with feedback (not stored)."),
        check=Interval(int, 0),
    )
    requirements: dict[str, Any] | None = setting(
        default=None,
        help=(
            "What a participant's device must offer, checked before consent (those without "
            "are told so with the platform's next step, and counted, not stored): "
            '`{ min_width = 800, min_height = 600, pointer = "mouse", browsers = { chrome = '
            "110, firefox = 115 } }` (pointer `mouse`, `touch` or `any`; a browser version 0: "
            "any version)."
        ),
        shown="none",
    )
    database: str | None = setting(
        default=None,
        help="A SQLAlchemy URL (PostgreSQL for a large study, say).",
        shown="`STUDY/survey/percalign.db`",
    )
    losses: list[str] | None = setting(
        default=None,
        help=(
            "The loss families whose IRIs people are asked about; the judges judge every run "
            "either way."
        ),
        shown="every loss of `[inversion]`",
    )


@dataclass(frozen=True)
class Bots(BotSettings):
    """``[bots]``: how many simulated participants, and the
    :class:`~percalign.judges.bots.BotSettings` fields: how they decide."""

    n: int = setting(
        default=0,
        help=("Simulated participants sent through the real survey service (127.0.0.1)."),
        check=Interval(int, 0),
    )


@dataclass(frozen=True)
class Scoring(Stopping):
    """``[scoring]``: how answers are reported, and the
    :class:`~percalign.survey.settings.Stopping` fields: what the survey must decide and when
    it may stop."""

    by: list[str] = setting(
        factory=lambda: ["model"],
        help=(
            "Condition columns human alignment is reported by (`model`, `layer`, `loss`, "
            "`seed_type`, `architecture`, `training`)."
        ),
    )
    table_rows: str = setting(
        default="architecture",
        help=(
            "Rows of the paper-style table (`architecture`, `training`, or any condition column)."
        ),
    )
    table_columns: str = setting(
        default="training",
        help=("Columns of the paper-style table."),
    )
    n_boot: int = setting(
        default=2000,
        help=("Bootstrap resamples of every CI."),
        check=Interval(int, 100),
    )


@dataclass(frozen=True)
class Trust(TrustSettings):
    """``[trust]``: whether the trust analysis runs, on which models and with which judges,
    and the :class:`~percalign.trust.TrustSettings` fields but those the study sets from its
    other sections (:attr:`FROM_STUDY`; :class:`~percalign.study.spec.StudySpec` sets them)."""

    #: TrustSettings fields the study sets, and the setting each is
    FROM_STUDY: ClassVar[dict[str, str]] = {
        "images": "the study's [images] source",
        "layer": "the first of the study's [inversion] layers",
        "n_boot": "the study's [scoring] n_boot",
        "seed": "the study's [study] seed",
    }

    enabled: bool = setting(
        default=False,
        help=("Run the trust analysis."),
    )
    models: list[str] = setting(
        factory=list,
        help=(
            "The models compared (two or more of `[[models]]`). Compare models of similar clean "
            "accuracy (within a few points), or best-on-average wins by default."
        ),
        shown="all",
    )
    judges: list[str] = setting(
        factory=list,
        help=("Judges whose alignment picks the model to trust."),
        shown="`[judges] names`",
    )

    def inversion_config(self, inversion: Inversion) -> InversionConfig:
        """The :class:`~percalign.inversion.InversionConfig` of the trust inversions
        (:meth:`~percalign.trust.TrustSettings.config`), fake-ReLU and channels-last from
        ``[inversion]``."""
        return self.config(fake_relu=inversion.fake_relu, channels_last=inversion.channels_last)


@dataclass(frozen=True)
class Tasks(_Checked):
    targets: int = setting(
        default=0,
        help=(
            "Targets per inversion task. A run (model x loss) becomes one task per layer "
            "objective and chunk of this many targets, rounded up so that a task's IRIs fill "
            "whole optimizer batches (a multiple of `batch_size / gcd(batch_size, IRIs per "
            "target)` targets). The outputs are bitwise the same for every value: smaller chunks "
            "only spread one run over more workers."
        ),
        shown="0: all",
        check=Interval(int, 0),
    )
    cpus: float = setting(
        default=1.0,
        help=(
            "CPUs each task asks for: a Ray worker, or a local worker process (`workers` above "
            "1), uses as many of torch's threads; tasks in this process use torch's default. On "
            "CPU, Ray and local outputs are bitwise equal when both use the same thread count, "
            "and were equal at 1 and 2 threads in our tests."
        ),
        check=Interval(float, 0.0, low_open=True),
    )
    workers: int = setting(
        default=1,
        help=(
            "Processes the local backend runs the train, invert and judge tasks in: 1 runs them "
            "in this process one after the other; 0 starts one per `cpus` CPUs of this machine. "
            "Small models on CPUs use one thread each better than several (the demo sets 0). "
            "A worker loads its models by name from the zoo, so models registered only in the "
            "calling program need 1."
        ),
        check=Interval(int, 0),
    )
    gpus: float | None = setting(
        default=None,
        help=(
            "GPUs each Ray task asks for; fractions share one GPU (`0.25` runs four tasks per "
            "GPU). Auto: 1 when the cluster has GPUs and the device (`inversion.device`, else "
            "`study.device`) is not `cpu`, else 0."
        ),
        shown="auto",
        check=Interval(float, 0.0),
    )
    retries: int = setting(
        default=3,
        help=(
            "Times Ray re-runs a task whose worker process or machine died (a kill, out of "
            "memory, a lost node); an error in percalign itself is not retried."
        ),
        check=Interval(int, 0),
    )
