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
    """Mahendran & Vedaldi's TV_beta: sum of ((dx)^2 + (dy)^2)^(beta/2) over pixels."""
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    sq = dy * dy + dx * dx
    values = sq if beta == 2.0 else (sq + 1e-8).pow(beta / 2.0)
    return values.flatten(1).sum(dim=1)


def blur(x: torch.Tensor) -> torch.Tensor:
    """0.5 * sum (x - blur3x3(x))^2, the blurred copy held constant: pulls x towards its blur."""
    c = x.shape[1]
    kernel = torch.full((c, 1, 3, 3), 1.0 / 9.0, dtype=x.dtype, device=x.device)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c).detach()
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
