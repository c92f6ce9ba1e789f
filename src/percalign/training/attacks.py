"""Projected gradient attacks in pixel space ([0, 1]), L2 or Linf, per image."""

from __future__ import annotations

from collections.abc import Callable

import torch

from percalign._checks import check_choice, check_float, check_int

__all__ = ["NORMS", "pgd"]

NORMS = ("l2", "linf")


def _per_image(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * _per_image((eps / n).clamp(max=1.0), delta)


def pgd(
    loss: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    eps: float,
    norm: str = "l2",
    steps: int = 5,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Maximize ``loss(x_adv)`` (per image, (N,)) within an eps-ball around ``x``.

    Args:
        loss: per-image loss to increase; it sees images in [0, 1].
        x: (N, C, H, W) clean images in [0, 1].
        eps: radius of the ball (L2 norm over the whole image, or Linf per pixel).
        norm: ``l2`` or ``linf``.
        steps: gradient steps.
        step_size: per step; default 2.5 * eps / steps (Madry et al.).
        random_start: start from a random point of the ball.
        generator: randomness of the start (CPU generator).

    Returns:
        Adversarial images, detached, in [0, 1] and within eps of ``x``.
    """
    check_choice("pgd", "norm", norm, NORMS)
    check_float("pgd", "eps", eps, low=0.0)
    check_int("pgd", "steps", steps, low=0)
    if eps == 0 or steps == 0:
        return x.detach().clone()
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start:
        noise = torch.randn(x.shape, generator=generator).to(x)
        if norm == "linf":
            delta = (torch.rand(x.shape, generator=generator).to(x) * 2 - 1) * eps
        else:
            radius = torch.rand(x.shape[0], generator=generator).to(x) * eps
            unit = noise / _per_image(noise.flatten(1).norm(dim=1).clamp_min(1e-12), noise)
            delta = unit * _per_image(radius, noise)
        delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(x + delta).sum(), delta)
        with torch.no_grad():
            if norm == "linf":
                step = alpha * grad.sign()
            else:
                g = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
                step = alpha * grad / _per_image(g, grad)
            delta = _project(delta + step, eps, norm)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()
