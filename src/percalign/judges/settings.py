"""The judges' settings: which judges, and how their decisions are made and reported.

:class:`JudgeSettings` is the one definition of these settings: a study's ``[judges]``
section is made of it, and ``percalign judge`` makes its options from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from percalign._settings import Interval, OneOf, check_settings, setting
from percalign.judges.base import Judge
from percalign.judges.metric import METRICS
from percalign.judges.registry import get_judges

__all__ = ["JudgeSettings"]


@dataclass(frozen=True)
class JudgeSettings:
    """Which automated judges decide, and how (checked on construction).

    >>> JudgeSettings(names=["pixel"], k=3).k
    3
    >>> [j.name for j in JudgeSettings(names=["pixel", "ssim"]).judges()]
    ['pixel', 'ssim']
    """

    names: list[str] = setting(
        factory=lambda: ["ssim", "ms-ssim", "pixel"],
        help=(
            "Automated judges: `pixel`, `ssim`, `ms-ssim`, `lpips-alex`, `lpips-vgg`, "
            "`lpips-squeeze`, `dreamsim`, `model:NAME[:LAYER[:cos|l2]]` (any loadable model's "
            "features)."
        ),
        flag="--judges",
    )
    k: int = setting(
        default=4,
        help=("References per k-way matching decision."),
        check=Interval(int, 2),
    )
    metric: str = setting(
        default="other_2afc",
        help=(
            "The judges' metric in the figures and tables: `other_2afc` (IRI closer to its target "
            "than to another target), `seed_2afc` (closer to its target than to its seed: the "
            "paper's proxy) or `matching`."
        ),
        check=OneOf(tuple(METRICS)),
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def judges(self, device: torch.device | str = "cpu") -> list[Judge]:
        """The judges :attr:`names` names, built on ``device``."""
        return get_judges(self.names, device=device)
