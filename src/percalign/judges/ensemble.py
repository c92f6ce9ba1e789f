"""Several judges deciding by majority vote."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from percalign.errors import ConfigError
from percalign.judges.base import Judge

__all__ = ["Ensemble"]


class Ensemble(Judge):
    """Majority vote of member judges; ties go to the first member's decision.

    ``distance`` is the mean of the members' distances, which is meaningful only for members
    on comparable scales; the decisions never use it.
    """

    def __init__(self, judges: Sequence[Judge]) -> None:
        if len(judges) < 2:
            raise ConfigError("An ensemble needs at least two judges.")
        self.judges = list(judges)
        self.name = "ensemble(" + "+".join(j.name for j in self.judges) + ")"
        self.symmetric = all(j.symmetric for j in self.judges)
        self.differentiable = False  # members are called without gradients

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.stack([j(a, b) for j in self.judges]).mean(0)

    def two_afc(
        self, query: torch.Tensor, first: torch.Tensor, second: torch.Tensor
    ) -> torch.Tensor:
        votes = torch.stack([j.two_afc(query, first, second) for j in self.judges]).float()
        share = votes.mean(0)
        return torch.where(share == 0.5, votes[0], (share > 0.5).float()).long()

    def match(self, queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        k = references.shape[1]
        votes = torch.stack([j.match(queries, references) for j in self.judges])  # (J, N)
        counts = torch.nn.functional.one_hot(votes, k).sum(0)  # (N, k)
        best = counts.max(dim=1, keepdim=True).values
        tied = counts == best
        first = votes[0]
        keep_first = tied.gather(1, first.view(-1, 1)).squeeze(1)
        return torch.where(keep_first, first, counts.argmax(dim=1))
