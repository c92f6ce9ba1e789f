"""The representation distance: relative Lp distance per image, summed over layers."""

from __future__ import annotations

import torch

__all__ = ["relative_distance"]


def relative_distance(
    features: torch.Tensor, target: torch.Tensor, target_norm: torch.Tensor, p: float = 2.0
) -> torch.Tensor:
    """||g(x) - g(t)||_p / ||g(t)||_p per image; ``target_norm`` is ||g(t)||_p, (N,)."""
    diff = (features.float() - target).flatten(1)
    return torch.linalg.vector_norm(diff, ord=p, dim=1) / target_norm


def feature_norm(features: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    return torch.linalg.vector_norm(features.float().flatten(1), ord=p, dim=1)
