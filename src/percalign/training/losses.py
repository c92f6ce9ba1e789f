"""Training losses that are more than cross-entropy: TRADES and NT-Xent (SimCLR)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent", "nt_xent_per_view", "trades_kl"]


def trades_kl(clean_logits: torch.Tensor, adv_logits: torch.Tensor) -> torch.Tensor:
    """Per-image KL(p_clean || p_adv), the robustness term of TRADES (Zhang et al. 2019)."""
    p = F.softmax(clean_logits, dim=1)
    return (p * (F.log_softmax(clean_logits, dim=1) - F.log_softmax(adv_logits, dim=1))).sum(1)


def nt_xent_per_view(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of each of the 2N views: (2N,). ``z1[i]`` and ``z2[i]`` are positives.

    Cosine similarities over temperature; each view's positive competes with the 2N - 2
    views of other images (Chen et al. 2020).
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, positives, reduction="none")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Mean NT-Xent over all 2N views."""
    return nt_xent_per_view(z1, z2, temperature).mean()
