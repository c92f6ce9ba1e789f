"""Image penalties of the human-leaning loss family. Each maps (N, C, H, W) to (N,).

All are sums over pixels and channels per image (not means), so their paper weights
(5e-4 for TV and blur, 5e-5 for L1) apply at any resolution the same way they did there.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from percalign.errors import unknown_name

__all__ = ["PENALTIES", "blur", "get_penalty", "l1", "l6", "lp_norm", "total_variation"]


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Mahendran & Vedaldi's TV_beta: sum of ((dx)^2 + (dy)^2)^(beta/2) over pixels.

    Every vertical and horizontal neighbour difference counts once (the last row's and
    column's too: a difference that does not exist is 0), so for the paper's beta = 2 this is
    the authors' sum of squared differences exactly.
    """
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    sq = dy * dy + dx * dx
    values = sq if beta == 2.0 else (sq + 1e-8).pow(beta / 2.0)
    return values.flatten(1).sum(dim=1)


#: The blur's 3x3 weights (the authors'): 1 at the centre, 0.5 around it.
_BLUR_KERNEL = ((0.5, 0.5, 0.5), (0.5, 1.0, 0.5), (0.5, 0.5, 0.5))


def blur(x: torch.Tensor) -> torch.Tensor:
    """0.5 * sum (x - blur3x3(x))^2, the blurred copy held constant: pulls x towards its blur.

    The blur is the authors': a weighted 3x3 mean (centre 1, neighbours 0.5) of each channel
    over the neighbours inside the image (the weights of those outside are left out).
    """
    c = x.shape[1]
    kernel = torch.tensor(_BLUR_KERNEL, dtype=x.dtype, device=x.device).expand(c, 1, 3, 3)
    with torch.no_grad():
        total = F.conv2d(x, kernel, padding=1, groups=c)
        weight = F.conv2d(torch.ones_like(x[:1]), kernel, padding=1, groups=c)
        blurred = total / weight
    return 0.5 * (x - blurred).pow(2).flatten(1).sum(dim=1)


def lp_norm(x: torch.Tensor, p: float, center: float = 0.5) -> torch.Tensor:
    """||x - center||_p per image."""
    # the epsilon keeps the root differentiable when every pixel equals ``center``
    return ((x - center).abs().pow(p).flatten(1).sum(dim=1) + 1e-12).pow(1.0 / p)


def l1(x: torch.Tensor) -> torch.Tensor:
    """sum |x - 0.5|: keeps pixels near mid-grey."""
    return (x - 0.5).abs().flatten(1).sum(dim=1)


def l6(x: torch.Tensor) -> torch.Tensor:
    """||x - 0.5||_6, the bounded-range norm of Mahendran & Vedaldi on mid-grey-centred pixels."""
    return lp_norm(x, 6.0)


PENALTIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tv": total_variation,
    "blur": blur,
    "l1": l1,
    "l6": l6,
}


def get_penalty(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in PENALTIES:
        raise unknown_name("penalty", name, PENALTIES)
    return PENALTIES[name]
