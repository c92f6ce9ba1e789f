"""A deep-feature judge: distance between a registered model's representations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from percalign._checks import check_choice
from percalign.errors import ConfigError
from percalign.judges.base import Judge, fit_channels
from percalign.judges.registry import judge
from percalign.models.model import Model

__all__ = ["ModelFeatures"]


@judge("model:NAME", summary="any loadable model's features: model:NAME[:LAYER[:cos|l2]]")
class ModelFeatures(Judge):
    """Distance between a model's representations of two images at one layer.

    Args:
        model: any loaded model (a robust zoo model is a common choice).
        layer: the layer read (default ``penultimate``).
        metric: ``cos`` (1 - cosine similarity) or ``l2`` (Euclidean distance divided by
            the norm of the second image's features, so that it is scale-free).
    """

    def __init__(self, model: Model, layer: str = "penultimate", metric: str = "cos") -> None:
        self.model = model
        self.metric = check_choice("ModelFeatures", "metric", metric, ("cos", "l2"))
        self.extractor = model.extractor([layer])
        self.layer = layer
        self.symmetric = metric == "cos"
        suffix = "" if (layer, metric) == ("penultimate", "cos") else f":{layer}:{metric}"
        self.name = f"model:{model.spec.name}{suffix}"

    @classmethod
    def from_name(cls, name: str, device: torch.device | str = "cpu") -> ModelFeatures:
        """``model:NAME[:LAYER[:cos|l2]]``: the model loaded by name onto ``device``."""
        from percalign.models import load

        parts = name.split(":")[1:]
        if not parts[0] or len(parts) > 3:
            raise ConfigError(f"Bad judge {name!r}; write model:NAME[:LAYER[:cos|l2]].")
        return cls(load(parts[0], device=device), *parts[1:])

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = fit_channels(x, self.model.spec.in_chans).to(self.model.device)
        return self.extractor(x)[self.layer].flatten(1).float()

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self._features(a), self._features(b)
        if self.metric == "cos":
            return 1.0 - F.cosine_similarity(fa, fb, dim=1, eps=1e-8)
        return (fa - fb).norm(dim=1) / fb.norm(dim=1).clamp_min(1e-12)
