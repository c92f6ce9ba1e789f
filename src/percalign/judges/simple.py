"""Judges without learned weights: pixel L2, SSIM and MS-SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from percalign.judges.base import Judge
from percalign.judges.registry import judge

__all__ = ["MSSSIM", "SSIM", "PixelL2"]

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


@judge("ssim", summary="1 - SSIM (Gaussian window 11 px), via torchmetrics")
class SSIM(Judge):
    """1 - SSIM (Wang et al. 2004; Gaussian window 11 px, sigma 1.5), via torchmetrics."""

    name = "ssim"

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from torchmetrics.functional.image import structural_similarity_index_measure

        if a.shape[1] != b.shape[1]:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        k = min(11, _odd(min(a.shape[-2:])))
        s = structural_similarity_index_measure(
            a, b, data_range=1.0, reduction="none", kernel_size=k
        )
        assert isinstance(s, torch.Tensor)  # (a tuple only with return_full_image=True)
        return 1.0 - s


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


def _odd(n: int) -> int:
    return n if n % 2 else n - 1
