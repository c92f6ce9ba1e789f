"""A clamp whose gradient does not depend on the installed PyTorch.

``torch.clamp`` passes the gradient at exactly the bounds in PyTorch 1.x and 2.x up to 2.13,
and stops it there from 2.14 on. In an inversion over clamped pixels that difference decides
whether a pixel that a step put at 0 or 1 can ever move again, so percalign never relies on
it: inside a differentiable path it clamps with :func:`clamp`, whose gradient is 1 on the
closed box [low, high] and 0 outside it (the rule of the PyTorch the paper's authors used).
"""

from __future__ import annotations

import torch

__all__ = ["clamp"]


def clamp(x: torch.Tensor, low: float | None = 0.0, high: float | None = 1.0) -> torch.Tensor:
    """``x`` clamped to [low, high] (None: unbounded there); gradient 1 on the closed box.

    Values inside the box, bounds included, are ``x`` itself, so the gradient reaches them
    unchanged; values outside are the bound, a constant, so they get none.

    >>> x = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    >>> y = clamp(x)
    >>> y.tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    >>> y.sum().backward()
    >>> x.grad.tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    inside = torch.ones_like(x, dtype=torch.bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x <= high
    return torch.where(inside, x, x.detach().clamp(low, high))
