"""DreamSim (Fu et al. 2023) as a judge, when the optional ``dreamsim`` package is installed."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from percalign import _paths
from percalign._clamp import clamp
from percalign.errors import WeightsNotFoundError, missing_extra
from percalign.judges.base import Judge
from percalign.judges.registry import judge

__all__ = ["DreamSimJudge"]


@judge("dreamsim", summary="DreamSim (optional: pip install 'percalign[dreamsim]')")
class DreamSimJudge(Judge):
    """DreamSim, if the optional ``dreamsim`` package and its weights exist."""

    name = "dreamsim"

    def __init__(self, device: torch.device | str = "cpu") -> None:
        try:
            from dreamsim import dreamsim
        except ImportError:
            raise missing_extra("The dreamsim judge", "dreamsim") from None
        cache = _paths.home() / "dreamsim"
        if _paths.offline() and not any(cache.glob("*")):
            raise WeightsNotFoundError(
                f"DreamSim weights are not in {cache} (offline); run it once with network "
                "access, or copy its cache folder there."
            )
        self.model, self.preprocess = dreamsim(
            pretrained=True, cache_dir=str(cache), device=str(device)
        )
        self.device = device

    @classmethod
    def from_name(cls, name: str, device: torch.device | str = "cpu") -> DreamSimJudge:
        return cls(device=device)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        def prep(x: torch.Tensor) -> torch.Tensor:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            return clamp(F.interpolate(x, size=(224, 224), mode="bicubic")).to(self.device)

        return self.model(prep(a), prep(b)).flatten()
