"""Batch augmentations in torch, per image and seeded: standard and SimCLR sets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from percalign.errors import unknown_name

__all__ = ["AUGMENTATIONS", "augment"]

AUGMENTATIONS = ("none", "standard", "simclr", "simclr-no-colour")


def _rand(n: int, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, generator=g).to(like)


def _affine(
    x: torch.Tensor, scale: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Zoom in by 1/scale around a shifted centre (normalized units), optionally mirrored."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = scale * torch.where(flip, -1.0, 1.0).to(x)
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _standard(x: torch.Tensor, g: torch.Generator, flip_ok: bool) -> torch.Tensor:
    """Shift by up to 4 px (zero fill, like pad-4-and-crop) and mirror half the images."""
    n, _, h, w = x.shape
    tx = torch.randint(-4, 5, (n,), generator=g).to(x) * 2 / w
    ty = torch.randint(-4, 5, (n,), generator=g).to(x) * 2 / h
    flip = (_rand(n, g, x) < 0.5) & flip_ok
    return _affine(x, torch.ones(n).to(x), tx, ty, flip)


def _simclr(x: torch.Tensor, g: torch.Generator, flip_ok: bool, colour: bool) -> torch.Tensor:
    """Random resized crop (area 20-100 %), mirror, colour jitter (p 0.8), greyscale (p 0.2)."""
    n = x.shape[0]
    scale = torch.sqrt(0.2 + 0.8 * _rand(n, g, x))
    tx, ty = [(1 - scale) * (2 * _rand(n, g, x) - 1) for _ in range(2)]
    flip = (_rand(n, g, x) < 0.5) & flip_ok
    x = _affine(x, scale, tx, ty, flip)
    if not colour:
        return x
    jitter = (_rand(n, g, x) < 0.8).view(-1, 1, 1, 1)
    bright = (1 + 0.8 * (_rand(n, g, x) - 0.5)).view(-1, 1, 1, 1)
    contrast = (1 + 0.8 * (_rand(n, g, x) - 0.5)).view(-1, 1, 1, 1)
    satur = (1 + 0.8 * (_rand(n, g, x) - 0.5)).view(-1, 1, 1, 1)
    y = x * bright
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * contrast + mean
    grey = y.mean(dim=1, keepdim=True)
    y = (y - grey) * satur + grey
    x = torch.where(jitter, y.clamp(0, 1), x)
    to_grey = (_rand(n, g, x) < 0.2).view(-1, 1, 1, 1)
    return torch.where(to_grey, x.mean(dim=1, keepdim=True).expand_as(x), x)


def augment(
    x: torch.Tensor, name: str, generator: torch.Generator, flip_ok: bool = True
) -> torch.Tensor:
    """Augment a batch (N, C, H, W) in [0, 1] with the named set; each image drawn separately.

    ``flip_ok`` is False for data whose mirror images change meaning (digits).
    """
    if name not in AUGMENTATIONS:
        raise unknown_name("augmentation", name, AUGMENTATIONS)
    if name == "none":
        return x
    if name == "standard":
        return _standard(x, generator, flip_ok)
    return _simclr(x, generator, flip_ok, colour=name == "simclr")
