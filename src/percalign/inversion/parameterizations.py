"""How the optimized variables become an image: clamped pixels, sigmoid pixels, or a
decorrelated Fourier spectrum.

A parameterization changes how the loss is minimized, not the loss: every one of them maps
its variables onto images in [0, 1], and the objective is computed on that image alone.
"""

from __future__ import annotations

import torch

from percalign.errors import unknown_name

__all__ = [
    "PARAMETERIZATIONS",
    "SIGMOID_EPS",
    "FourierImage",
    "ImageParam",
    "PixelImage",
    "SigmoidImage",
    "make_param",
    "spectrum_noise_image",
]

#: Square root of ImageNet's RGB colour correlation (published with the Lucid library).
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
#: Seeds are clamped into (eps, 1 - eps) before the logit of the sigmoid and Fourier images.
#: It is below half an 8-bit level (1/510), so a seed on the 8-bit grid starts exactly where
#: it is: quantizing the starting image gives back the seed.
SIGMOID_EPS = 1e-3


class ImageParam:
    """Optimized variables ``params`` (N, ...) and the image (N, C, H, W) in [0, 1] they make."""

    params: torch.Tensor
    #: how far the starting image may differ from the seed (0 for an exact start).
    eps: float = 0.0

    def __init__(self, start: torch.Tensor) -> None:
        raise NotImplementedError

    def image(self) -> torch.Tensor:
        raise NotImplementedError

    def project(self) -> None:
        """Bring ``params`` back to the feasible set after a step (in place)."""

    def select(self, rows: torch.Tensor) -> None:
        """Keep only the images ``rows`` (indices into the batch), e.g. once others stopped."""
        self.params = self.params.detach()[rows].clone().requires_grad_(True)


class PixelImage(ImageParam):
    """The pixels themselves, kept in [0, 1] by clamping after every step (the paper's loop).

    The start is taken as given: a raw noise seed outside [0, 1] is seen by the model through
    its input clamp, and the first step's projection brings it into the box, as in the
    authors' loop. A pixel on a bound keeps its gradient (the model's input clamp passes it
    there), so a step can move it back inside.
    """

    def __init__(self, start: torch.Tensor) -> None:
        self.params = start.detach().clone().requires_grad_(True)

    def image(self) -> torch.Tensor:
        return self.params

    def project(self) -> None:
        with torch.no_grad():
            self.params.clamp_(0, 1)


class SigmoidImage(ImageParam):
    """pixels = sigmoid(z), z unconstrained: an image that cannot saturate.

    Starts at the seed clamped into (eps, 1 - eps), ``eps`` = :data:`SIGMOID_EPS`: z =
    logit(seed). No projection is needed: every z is a valid image, and a pixel near 0 or 1
    keeps a (small) gradient that an adaptive optimizer such as Adam rescales.
    """

    eps = SIGMOID_EPS

    def __init__(self, start: torch.Tensor) -> None:
        z = torch.logit(start.detach().clamp(self.eps, 1 - self.eps))
        self.params = z.contiguous().requires_grad_(True)

    def image(self) -> torch.Tensor:
        return torch.sigmoid(self.params)


def _fourier_terms(
    c: int, h: int, w: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The spectrum's scale 1/max(f, 1/max(H, W)), (H, W//2+1), and the colour matrix (or None)."""
    fy = torch.fft.fftfreq(h, dtype=dtype, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=dtype, device=device)[None, :]
    scale = 1.0 / torch.clamp(torch.sqrt(fx * fx + fy * fy), min=1.0 / max(h, w))
    color = _COLOR_SQRT.to(device=device, dtype=dtype)
    return scale, (color / color.norm(dim=0).max() if c == 3 else None)


def _spectrum_image(
    params: torch.Tensor, scale: torch.Tensor, color: torch.Tensor | None, size: tuple[int, int]
) -> torch.Tensor:
    spectrum = torch.view_as_complex(params) * scale
    y = torch.fft.irfft2(spectrum, s=size, norm="ortho") / 4.0
    if color is not None:
        y = torch.einsum("ij,njhw->nihw", color, y)
    return torch.sigmoid(y)


class FourierImage(ImageParam):
    """image = sigmoid(C @ (irfft2(S * 1/max(f, 1/max(H, W))) / 4)), C the colour decorrelation.

    Starts exactly at ``start`` (up to clipping pixels to (eps, 1 - eps)): the spectrum is
    obtained by inverting each stage. ``clamp_spectrum`` clamps the spectrum's coefficients
    to [0, 1] after every step, as the paper's authors' code did (a defect: it removes every
    negative coefficient); off by default.
    """

    eps = SIGMOID_EPS

    def __init__(self, start: torch.Tensor, clamp_spectrum: bool = False) -> None:
        _n, c, h, w = start.shape
        self.size = (h, w)
        self.scale, self.color = _fourier_terms(c, h, w, start.dtype, start.device)
        self.clamp_spectrum = clamp_spectrum
        z = torch.logit(start.detach().clamp(self.eps, 1 - self.eps))
        if self.color is not None:
            z = torch.einsum("ij,njhw->nihw", torch.linalg.inv(self.color), z)
        spectrum = torch.fft.rfft2(z * 4.0, norm="ortho") / self.scale
        self.params = torch.view_as_real(spectrum).contiguous().requires_grad_(True)

    def image(self) -> torch.Tensor:
        return _spectrum_image(self.params, self.scale, self.color, self.size)

    def project(self) -> None:
        if self.clamp_spectrum:
            with torch.no_grad():
                self.params.clamp_(0, 1)


def spectrum_noise_image(
    shape: tuple[int, int, int], sd: float, generator: torch.Generator
) -> torch.Tensor:
    """The image (C, H, W) of a spectrum of N(0, sd^2) noise: the authors' noise seeds of the
    Fourier family (sd 1 for super-noise, 0.01 for light-noise), drawn in the spectrum."""
    c, h, w = shape
    noise = sd * torch.randn((1, c, h, w // 2 + 1, 2), generator=generator)
    scale, color = _fourier_terms(c, h, w, noise.dtype, noise.device)
    return _spectrum_image(noise, scale, color, (h, w))[0]


#: Every parameterization by name. ``fourier`` is chosen by the loss family of that name.
PARAMETERIZATIONS: dict[str, type[ImageParam]] = {
    "pixel": PixelImage,
    "sigmoid": SigmoidImage,
    "fourier": FourierImage,
}


def make_param(kind: str, start: torch.Tensor, clamp_spectrum: bool = False) -> ImageParam:
    """The parameterization ``kind`` started at ``start`` (N, C, H, W) in [0, 1].

    ``clamp_spectrum`` is passed to :class:`FourierImage` (the authors' spectrum clamp).
    """
    if kind not in PARAMETERIZATIONS:
        raise unknown_name("parameterization", kind, PARAMETERIZATIONS)
    if kind == "fourier":
        return FourierImage(start, clamp_spectrum=clamp_spectrum)
    return PARAMETERIZATIONS[kind](start)
