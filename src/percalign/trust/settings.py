"""The trust analysis's settings, defined once.

:class:`TrustSettings` is what :func:`~percalign.trust.analyze` takes; ``percalign trust``
makes its options from it and a study's ``[trust]`` section is made of it (the study sets
``images``, ``layer``, ``n_boot`` and ``seed`` from its other sections).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from percalign._settings import Interval, OneOf, check_settings, setting
from percalign.data.images import SPLITS
from percalign.inversion.config import PRESETS, InversionConfig

__all__ = ["TrustSettings"]


@dataclass(frozen=True)
class TrustSettings:
    """Which inputs the models are compared on, how their IRIs are made, and how the rules
    are scored (checked on construction).

    >>> TrustSettings(max_inputs=50).config().steps
    1000
    """

    images: str = setting(
        default="digits",
        help=("Labelled images: `digits`, or a folder with one sub-folder per class."),
    )
    split: str = setting(
        default="test",
        help=("Their split."),
        check=OneOf(SPLITS),
    )
    n_images: int | None = setting(
        default=None,
        help=("Labelled inputs searched for disagreements."),
        shown="the whole split",
        check=Interval(int, 1),
    )
    max_inputs: int | None = setting(
        default=100,
        help=(
            "At most this many of the disputed inputs are inverted and evaluated, drawn with "
            "the seed (the summary says how many were disputed and used); set it larger (or to "
            "a large number for all) for tighter CIs."
        ),
        check=Interval(int, 2),
    )
    seeds: str = setting(
        default="super-noise:2,image:2",
        help=(
            "Seeds of the IRIs of the disputed inputs (four IRIs per input and model); only IRIs "
            "that pass the validity gate are scored."
        ),
    )
    layer: str = setting(
        default="penultimate",
        help=("The layer objective inverted."),
    )
    preset: str = setting(
        default="default",
        help=(
            "The inversion preset of those IRIs (`default` or `paper`; see `percalign invert "
            "--preset`)."
        ),
        check=OneOf(tuple(PRESETS)),
    )
    steps: int | None = setting(
        default=1000,
        help=(
            "The most inversion steps per IRI, replacing the preset's: 1000 bring every seed "
            "type below the validity gate on the digits zoo (`benchmarks/convergence.py`); only "
            "valid IRIs are scored and the report says how many were dropped."
        ),
        check=Interval(int, 1),
    )
    stop_at_valid: float | None = setting(
        default=0.5,
        help=(
            "Stop each of those IRIs once below the validity threshold times this margin (as "
            "`inversion.stop_at_valid`): most stop within a few hundred steps, image seeds within "
            "about 50, so this saves most of the work."
        ),
        check=Interval(float, 0.0, 1.0, low_open=True),
    )
    batch_size: int = setting(
        default=512,
        help=(
            "IRIs optimized together: all of a model's in one batch lets the few slow ones share "
            "their steps (a batch shrinks to its active images; on a CPU a step of 5 images costs "
            "about as much as one of 60)."
        ),
        check=Interval(int, 1),
    )
    metric: str = setting(
        default="other_2afc",
        help=("`other_2afc` or `seed_2afc`."),
        check=OneOf(("seed_2afc", "other_2afc")),
    )
    folds: int = setting(
        default=5,
        help=("Cross-validation folds of the confidence+alignment rule (grouped by input)."),
        check=Interval(int, 2),
    )
    n_boot: int = setting(
        default=2000,
        help=("Bootstrap resamples of every CI."),
        flag="--bootstrap",
        check=Interval(int, 100),
    )
    seed: int = setting(
        default=0,
        help=("Seed of the inputs drawn, of the IRIs' seeds and of the bootstrap."),
        check=Interval(int, 0),
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def config(self, **options: Any) -> InversionConfig:
        """The :class:`~percalign.inversion.InversionConfig` of the IRIs: the preset with
        ``steps``, ``stop_at_valid``, ``batch_size`` and ``seed`` on top, then ``options``
        (other InversionConfig fields, such as ``fake_relu``)."""
        return InversionConfig.from_options(
            self.preset,
            **{
                "steps": self.steps,
                "stop_at_valid": self.stop_at_valid,
                "batch_size": self.batch_size,
                "seed": self.seed,
                **options,
            },
        )
