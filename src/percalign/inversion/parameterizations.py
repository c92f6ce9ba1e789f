"""How the optimized variables become an image: pixels, or a decorrelated Fourier spectrum."""

from __future__ import annotations

import torch

__all__ = ["FourierImage", "ImageParam", "PixelImage", "make_param"]

#: Square root of ImageNet's RGB colour correlation (published with the Lucid library).
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_EPS = 1e-3


class ImageParam:
    """Optimized variables ``params`` (N, ...) and the image (N, C, H, W) in [0, 1] they make."""

    params: torch.Tensor

    def image(self) -> torch.Tensor:
        raise NotImplementedError

    def project(self) -> None:
        """Bring ``params`` back to the feasible set after a step (in place)."""


class PixelImage(ImageParam):
    """The pixels themselves, kept in [0, 1] by clamping after every step."""

    def __init__(self, start: torch.Tensor) -> None:
        self.params = start.detach().clone().clamp_(0, 1).requires_grad_(True)

    def image(self) -> torch.Tensor:
        return self.params

    def project(self) -> None:
        with torch.no_grad():
            self.params.clamp_(0, 1)


class FourierImage(ImageParam):
    """image = sigmoid(C @ (irfft2(S * 1/max(f, 1/max(H, W))) / 4)), C the colour decorrelation.

    Starts exactly at ``start`` (up to clipping pixels to [1e-3, 1 - 1e-3]): the spectrum is
    obtained by inverting each stage.
    """

    def __init__(self, start: torch.Tensor) -> None:
        _n, c, h, w = start.shape
        fy = torch.fft.fftfreq(h, dtype=start.dtype, device=start.device)[:, None]
        fx = torch.fft.rfftfreq(w, dtype=start.dtype, device=start.device)[None, :]
        freq = torch.sqrt(fx * fx + fy * fy)
        self.scale = 1.0 / torch.clamp(freq, min=1.0 / max(h, w))
        self.size = (h, w)
        color = _COLOR_SQRT.to(start) / _COLOR_SQRT.norm(dim=0).max()
        self.color = color if c == 3 else None
        z = torch.logit(start.detach().clamp(_EPS, 1 - _EPS))
        if self.color is not None:
            z = torch.einsum("ij,njhw->nihw", torch.linalg.inv(self.color), z)
        spectrum = torch.fft.rfft2(z * 4.0, norm="ortho") / self.scale
        self.params = torch.view_as_real(spectrum).contiguous().requires_grad_(True)

    def image(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.params) * self.scale
        y = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0
        if self.color is not None:
            y = torch.einsum("ij,njhw->nihw", self.color, y)
        return torch.sigmoid(y)


def make_param(kind: str, start: torch.Tensor) -> ImageParam:
    """``kind`` is 'pixel' or 'fourier'; ``start`` (N, C, H, W) in [0, 1] is the seed image."""
    return FourierImage(start) if kind == "fourier" else PixelImage(start)
