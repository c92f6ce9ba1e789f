"""How the optimized forward pass runs: channels-last, bf16 autocast, ``torch.compile``.

None of these changes the loss being minimized; each changes how it is computed. The
reported distances (seed and final) are always computed eagerly in float32.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from percalign.models.extractor import FeatureExtractor
from percalign.models.model import Model

__all__ = ["fast_features", "model_for_run"]

Features = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def model_for_run(model: Model, channels_last: bool) -> Model:
    """The model the optimization runs: ``model`` itself, or a channels-last copy of it.

    The caller's network is never converted in place (its memory format is the caller's
    business, and a Ray worker's cached model is shared by later tasks).
    """
    if not channels_last:
        return model
    module = copy.deepcopy(model.module).to(memory_format=torch.channels_last)
    return Model(module, model.spec)


def fast_features(
    extractor: FeatureExtractor, precision: str, channels_last: bool, compile: bool
) -> Features:
    """The extractor's function as the optimization runs it.

    Args:
        extractor: reads the objective's layers.
        precision: ``fp32`` or ``bf16`` (autocast on the input's device type).
        channels_last: feed the network channels-last input.
        compile: run it through ``torch.compile`` (the whole network traced, truncated by
            dead-code elimination; see :meth:`FeatureExtractor.traceable`). The first call
            compiles (seconds to minutes), and once more when the batch size first changes.
    """
    base: Features = extractor.traceable() if compile else extractor

    def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if precision == "bf16":
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
                return base(x)
        return base(x)

    if not compile:
        return features
    # Batch sizes change (the last batch; batches shrinking to their active images): after
    # the first change torch.compile makes the batch dimension dynamic, so a run compiles at
    # most twice instead of once per size.
    return torch.compile(features)
