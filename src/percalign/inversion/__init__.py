"""The inversion engine: objectives, loss families, parameterizations, transforms,
update rules, seeds, stopping, and the validity gate. Pure compute: no files, no printing.
"""

from percalign.inversion.config import (
    LOSS_FAMILIES,
    InversionConfig,
    LossSpec,
    Objective,
    parse_objectives,
)
from percalign.inversion.engine import InversionResult, Progress, invert, quantize
from percalign.inversion.seeds import SEED_KINDS, SeedSpec, parse_seeds
from percalign.inversion.validity import NullDistribution, null_distribution, validity

__all__ = [
    "LOSS_FAMILIES",
    "SEED_KINDS",
    "InversionConfig",
    "InversionResult",
    "LossSpec",
    "NullDistribution",
    "Objective",
    "Progress",
    "SeedSpec",
    "invert",
    "null_distribution",
    "parse_objectives",
    "parse_seeds",
    "quantize",
    "validity",
]
