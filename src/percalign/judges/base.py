"""The judge interface: a distance between image batches, and decisions built on it."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

__all__ = ["Judge", "fit_channels"]


def fit_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey to colour by replication, colour to grey by the mean of the channels."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    return x.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1)


class Judge(ABC):
    """An automated observer. Images are (N, C, H, W) float in [0, 1], C = 1 or 3.

    Subclasses define :meth:`distance` (smaller = more alike); the 2AFC and matching decisions
    follow from it, the same way for every judge.
    """

    #: short name used in tables and files (``ssim``, ``lpips-alex``, ``model:NAME``)
    name: str = "judge"
    #: whether distance(a, b) == distance(b, a)
    symmetric: bool = True
    #: whether :meth:`distance` carries gradients to its inputs (needed by the adversarial
    #: loss, which uses a judge as its perceptual term)
    differentiable: bool = True

    @classmethod
    def from_name(cls, name: str, device: torch.device | str = "cpu") -> Judge:
        """Build the judge called ``name`` (a name it is registered under, see
        :func:`~percalign.judges.registry.judge`); judges without weights ignore ``device``."""
        return cls()

    @abstractmethod
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance (N,) between matching images of ``a`` and ``b``."""

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.distance(a, b).float()

    def two_afc(
        self, query: torch.Tensor, first: torch.Tensor, second: torch.Tensor
    ) -> torch.Tensor:
        """For each query, 0 if ``first`` is at most as far as ``second``, else 1."""
        return (self(query, first) > self(query, second)).long()

    def match(self, queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """Index of the nearest of k references for each query.

        Args:
            queries: (N, C, H, W).
            references: (N, k, C, H, W), each query's own candidates.
        """
        n, k = references.shape[:2]
        d = self(queries.repeat_interleave(k, dim=0), references.flatten(0, 1))
        return d.view(n, k).argmin(dim=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
