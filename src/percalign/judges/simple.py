"""Judges without learned weights: pixel L2, SSIM and MS-SSIM."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from percalign._clamp import clamp
from percalign.judges.base import Judge
from percalign.judges.registry import judge

__all__ = ["MSSSIM", "SSIM", "PixelL2", "blur_matrix", "ssim"]

#: MS-SSIM's five scales with an 11 px window need images above 160 px on each side.
MS_SSIM_MIN_SIZE = 176


@judge("pixel", summary="root-mean-square pixel difference")
class PixelL2(Judge):
    """Root-mean-square pixel difference."""

    name = "pixel"

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape[1] != b.shape[1]:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        return (a - b).pow(2).flatten(1).mean(dim=1).sqrt()


@judge("ssim", summary="1 - SSIM (Gaussian window 11 px, sigma 1.5)")
class SSIM(Judge):
    """1 - SSIM (Wang et al. 2004): Gaussian window of sigma 1.5 (11 px), K1 0.01, K2 0.03.

    The local means, variances and covariance are Gaussian blurs of the images, their squares
    and their product, each computed as two matrix products (:func:`blur_matrix`: the
    separable window with the image's edges mirrored). The SSIM map has the images' own size
    and its mean is the index: the definition torchmetrics implements, which the tests check
    this against (to rounding in float64, 1e-5 in float32). With the gradient, which the
    adversarial loss pays at every step, it takes a twentieth (48 grey 32 px images) to a
    third (8 colour 224 px ones) of torchmetrics' CPU time.
    """

    name = "ssim"

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape[1] != b.shape[1]:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        return 1.0 - ssim(a, b)


def ssim(
    a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03
) -> torch.Tensor:
    """SSIM (N,) of matching images in [0, 1] (data range 1), averaged over channels and
    pixels; differentiable."""
    h, w = a.shape[-2:]
    dtype = torch.promote_types(a.dtype, torch.float32)
    blur_h = blur_matrix(h, sigma).to(a.device, dtype)
    blur_w = blur_matrix(w, sigma).to(a.device, dtype).T
    a, b = a.to(dtype), b.to(dtype)
    mu_a, mu_b, aa, bb, ab = blur_h @ torch.stack((a, b, a * a, b * b, a * b)) @ blur_w
    var_a = clamp(aa - mu_a * mu_a, 0.0, None)
    var_b = clamp(bb - mu_b * mu_b, 0.0, None)
    cov = ab - mu_a * mu_b
    c1, c2 = k1**2, k2**2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    )
    return index.flatten(1).mean(dim=1)


@functools.lru_cache(maxsize=32)
def blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """(n, n) matrix ``M`` such that ``M @ x`` blurs the columns of ``x`` with a normalized
    Gaussian of ``sigma`` (radius ``int(3.5 sigma + 0.5)``), the edges mirrored without
    repeating the edge pixel (as ``F.pad(mode="reflect")``; repeatedly, for signals shorter
    than the radius)."""
    radius = int(3.5 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    m = torch.zeros(n, n, dtype=torch.float64)
    period = max(2 * (n - 1), 1)
    for i in range(n):
        for k, weight in zip(range(-radius, radius + 1), weights, strict=True):
            j = (i + k) % period
            m[i, j if j < n else period - j] += weight
    return m


@judge("ms-ssim", summary="1 - MS-SSIM (five scales; upsampled to 176 px)")
class MSSSIM(Judge):
    """1 - MS-SSIM (five scales), via torchmetrics.

    Images smaller than 176 px are upsampled (bilinear) to 176 px first, since five
    halvings of an 11 px window need that much room; this makes MS-SSIM on 32 px images
    comparable across runs, but it is not MS-SSIM at the images' own resolution.
    """

    name = "ms-ssim"

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from torchmetrics.functional.image import (
            multiscale_structural_similarity_index_measure as ms_ssim,
        )

        if a.shape[1] != b.shape[1]:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        h, w = a.shape[-2:]
        if min(h, w) < MS_SSIM_MIN_SIZE:
            f = MS_SSIM_MIN_SIZE / min(h, w)
            size = (round(h * f), round(w * f))
            a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
            b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        return 1.0 - ms_ssim(a, b, data_range=1.0, reduction="none")
