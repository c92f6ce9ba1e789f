"""Per-image update rules: the paper's normalized gradient step, Adam and SGD.

Each rule updates a batch of independent images; a boolean ``active`` mask (N,) freezes the
images that stopped early. Written out rather than taken from ``torch.optim`` so that every
rule is per image by construction (a batch gives the same result as its images one by one).
"""

from __future__ import annotations

import math

import torch

__all__ = ["STEP_RULES", "learning_rate", "make_rule"]


def _per_image(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.ndim - 1)))


class NormalizedGD:
    """x <- x - lr * g / (||g||_2 + 1e-10), the norm taken per image (the paper's optimizer).

    The arithmetic is the authors' own, operation for operation, so that the paper preset
    gives their iterates bit for bit. ``update`` scales ``grad`` in place: pass a gradient
    that is not needed afterwards.
    """

    #: added to the gradient's norm, as in the authors' step
    EPS = 1e-10

    def __init__(self, params: torch.Tensor, **_: float) -> None:
        pass

    def select(self, rows: torch.Tensor) -> None:
        """Keep the state of the images ``rows`` only (it has none)."""

    def update(
        self, params: torch.Tensor, grad: torch.Tensor, lr: float, active: torch.Tensor
    ) -> None:
        norm = grad.flatten(1).norm(dim=1).add_(self.EPS)
        grad.div_(_per_image(norm, grad)).mul_(lr)  # grad is fresh: scaled in place
        params.sub_(grad.mul_(_per_image(active, grad).to(grad.dtype)))


class Adam:
    """Adam (Kingma & Ba), elementwise, bias-corrected."""

    def __init__(
        self,
        params: torch.Tensor,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        **_: float,
    ) -> None:
        self.m = torch.zeros_like(params)
        self.v = torch.zeros_like(params)
        self.betas, self.eps, self.t = betas, eps, 0

    def select(self, rows: torch.Tensor) -> None:
        """Keep the state of the images ``rows`` only."""
        self.m, self.v = self.m[rows], self.v[rows]

    def update(
        self, params: torch.Tensor, grad: torch.Tensor, lr: float, active: torch.Tensor
    ) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        step = lr / (1 - b1**self.t)
        denom = (self.v / (1 - b2**self.t)).sqrt_().add_(self.eps)
        params.sub_(step * self.m / denom * _per_image(active, grad).to(grad.dtype))


class SGD:
    """SGD with momentum (heavy ball)."""

    def __init__(self, params: torch.Tensor, momentum: float = 0.9, **_: float) -> None:
        self.buf = torch.zeros_like(params)
        self.momentum = momentum

    def select(self, rows: torch.Tensor) -> None:
        """Keep the state of the images ``rows`` only."""
        self.buf = self.buf[rows]

    def update(
        self, params: torch.Tensor, grad: torch.Tensor, lr: float, active: torch.Tensor
    ) -> None:
        self.buf.mul_(self.momentum).add_(grad)
        params.sub_(lr * self.buf * _per_image(active, grad).to(grad.dtype))


STEP_RULES = {"normalized-gd": NormalizedGD, "adam": Adam, "sgd": SGD}


def make_rule(name: str, params: torch.Tensor, momentum: float) -> NormalizedGD | Adam | SGD:
    return STEP_RULES[name](params, momentum=momentum)


def learning_rate(
    base: float, step: int, steps: int, schedule: str, decay_every: int, decay_factor: float
) -> float:
    """Learning rate at ``step`` (0-based) of ``steps`` under ``schedule``."""
    if schedule == "step":
        return base * decay_factor ** (step // decay_every)
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return base
