"""Automated judges of image similarity, the paper's proxy metric, and simulated participants.

Every judge takes image batches in [0, 1] and gives a distance; decisions (2AFC, k-way
matching) follow from it. Judges: ``pixel``, ``ssim``, ``ms-ssim``, ``lpips-alex|vgg|squeeze``
(calibrated heads only), ``dreamsim`` (optional), ``model:NAME[:LAYER[:cos|l2]]``, and an
:class:`Ensemble` of any of them.
"""

from percalign.judges.base import Judge, fit_channels
from percalign.judges.bots import Bot
from percalign.judges.ensemble import Ensemble
from percalign.judges.features import ModelFeatures
from percalign.judges.lpips import LPIPS
from percalign.judges.metric import METRICS, bootstrap_ci, judge_run, read_run, summarize
from percalign.judges.registry import JUDGE_NAMES, LPIPSJudge, get_judge, get_judges
from percalign.judges.simple import MSSSIM, SSIM, PixelL2

__all__ = [
    "JUDGE_NAMES",
    "LPIPS",
    "METRICS",
    "MSSSIM",
    "SSIM",
    "Bot",
    "Ensemble",
    "Judge",
    "LPIPSJudge",
    "ModelFeatures",
    "PixelL2",
    "bootstrap_ci",
    "fit_channels",
    "get_judge",
    "get_judges",
    "judge_run",
    "read_run",
    "summarize",
]
