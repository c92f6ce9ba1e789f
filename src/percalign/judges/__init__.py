"""Automated judges of image similarity, the paper's proxy metric, and simulated participants.

Every judge takes image batches in [0, 1] and gives a distance; decisions (2AFC, k-way
matching) follow from it. The judges are registered by name (:func:`names`; a new judge is
one module with one ``@judge`` class, see :mod:`percalign.judges.registry`), and an
:class:`Ensemble` combines any of them.

>>> names()  # doctest: +NORMALIZE_WHITESPACE
['dreamsim', 'lpips-alex', 'lpips-alex-random', 'lpips-squeeze', 'lpips-squeeze-random',
 'lpips-vgg', 'lpips-vgg-random', 'ms-ssim', 'pixel', 'ssim', 'model:NAME']
"""

from typing import Any

from percalign.judges.base import Judge, fit_channels
from percalign.judges.bots import Bot, BotSettings
from percalign.judges.ensemble import Ensemble
from percalign.judges.features import ModelFeatures
from percalign.judges.lpips import LPIPS, LPIPSJudge
from percalign.judges.metric import METRICS, bootstrap_ci, judge_run, summarize
from percalign.judges.registry import (
    differentiable_names,
    get_judge,
    get_judges,
    judge,
    names,
    summaries,
)
from percalign.judges.settings import JudgeSettings
from percalign.judges.simple import MSSSIM, SSIM, PixelL2
from percalign.judges.validation import human_ceiling, read_triplets, validate_judges

__all__ = [
    "LPIPS",
    "METRICS",
    "MSSSIM",
    "SSIM",
    "Bot",
    "BotSettings",
    "Ensemble",
    "Judge",
    "JudgeSettings",
    "LPIPSJudge",
    "ModelFeatures",
    "PixelL2",
    "bootstrap_ci",
    "differentiable_names",
    "fit_channels",
    "get_judge",
    "get_judges",
    "human_ceiling",
    "judge",
    "judge_run",
    "names",
    "read_triplets",
    "summaries",
    "summarize",
    "validate_judges",
]


def __getattr__(name: str) -> Any:
    if name == "JUDGE_NAMES":  # the registered names (computed; see names())
        return tuple(names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
