"""Random transforms re-sampled at every step (the 'transforms' human-leaning loss).

The recipe is Lucid's standard set: jitter 8 px, scale in {0.90, 0.92, ..., 1.10}, rotation
in -10..10 degrees with 0 drawn more often, jitter 4 px. Here the four are composed into one
per-image affine warp that keeps the image size (so fixed-size models such as ViTs work), and
pixels that come from outside the image are mid-grey (0.5), which plays the role of Lucid's
grey padding. Each image draws its own transform, from its own random stream.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["ANGLES", "SCALES", "random_affine", "sample_transform_draws"]

SCALES = torch.tensor([1.0 + (i - 5) / 50.0 for i in range(11)])
ANGLES = torch.tensor([float(a) for a in range(-10, 11)] + [0.0] * 5)
JITTERS = (8, 4)
#: uniform draws per image per step: jitter1 (x, y), scale, angle, jitter2 (x, y)
DRAWS_PER_STEP = 6


def sample_transform_draws(generator: torch.Generator, steps: int) -> torch.Tensor:
    """All of one image's random numbers for ``steps`` steps: (steps, 6) uniform in [0, 1)."""
    return torch.rand(steps, DRAWS_PER_STEP, generator=generator)


def _pick(values: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return values[(u * len(values)).long().clamp_(max=len(values) - 1)]


def _shift(u: torch.Tensor, d: int) -> torch.Tensor:
    """Integer shift in {-d/2, ..., d/2} from uniforms u."""
    return torch.floor(u * (d + 1)) - d // 2


def random_affine(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Warp each image of ``x`` (N, C, H, W) by the transform its uniforms ``u`` (N, 6) encode."""
    _n, _, h, w = x.shape
    u = u.to(device=x.device, dtype=x.dtype)
    t1 = torch.stack([_shift(u[:, 0], JITTERS[0]), _shift(u[:, 1], JITTERS[0])], dim=1)
    t2 = torch.stack([_shift(u[:, 4], JITTERS[1]), _shift(u[:, 5], JITTERS[1])], dim=1)
    scale = _pick(SCALES.to(x), u[:, 2])
    angle = _pick(ANGLES.to(x), u[:, 3]) * (math.pi / 180.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # Content moves as v = R S (p + t1) + t2, so the sampler reads p = (RS)^-1 (v - t2) - t1.
    inv = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # (N, 2, 2)
    offset = -(inv @ t2.unsqueeze(-1)).squeeze(-1) - t1
    to_norm = torch.tensor([2.0 / w, 2.0 / h], dtype=x.dtype, device=x.device)
    linear = inv * to_norm.view(1, 2, 1) / to_norm.view(1, 1, 2)
    theta = torch.cat([linear, (offset * to_norm).unsqueeze(-1)], dim=2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return (
        F.grid_sample(x - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        + 0.5
    )
