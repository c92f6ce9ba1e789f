"""Simulated participants: a judge plus lapses and decision noise, seeded; and
:class:`BotSettings`, how a study or ``survey bots`` makes them."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from percalign._checks import check_float, check_int
from percalign._random import stream
from percalign._settings import Interval, check_settings, setting
from percalign.judges.base import Judge
from percalign.judges.registry import get_judge

__all__ = ["Bot", "BotSettings"]


@dataclass
class Bot:
    """A simulated participant.

    On each trial it lapses with probability ``lapse`` (answers uniformly at random);
    otherwise it chooses among candidates with probability softmax(-distance / temperature)
    (temperature 0: always the nearest, ties to the first), distances from ``judge``.

    Example:
        >>> import torch
        >>> from percalign.judges import Bot, PixelL2
        >>> bot = Bot(PixelL2())
        >>> q = torch.zeros(2, 1, 4, 4)
        >>> bot.two_afc(q, torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)).tolist()
        [0, 0]
    """

    judge: Judge
    lapse: float = 0.0
    temperature: float = 0.0
    seed: int = 0
    generator: torch.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_float("Bot", "lapse", self.lapse, low=0.0, high=1.0)
        check_float("Bot", "temperature", self.temperature, low=0.0)
        check_int("Bot", "seed", self.seed, low=0)
        self.generator = torch.Generator().manual_seed(self.seed)

    def start_trial(self, position: int) -> None:
        """Make the next decision's random draws depend on (seed, position) only.

        A bot that resumes after a server restart or a killed run then answers each trial as
        it would have without the interruption.
        """
        self.generator = stream("bot", self.seed, position)

    def _choose(self, distances: torch.Tensor) -> torch.Tensor:
        """distances (N, k) -> chosen index (N,)."""
        n, k = distances.shape
        if self.temperature == 0:
            choice = distances.argmin(dim=1)
        else:
            probs = torch.softmax(-distances / self.temperature, dim=1)
            choice = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
        lapses = torch.rand(n, generator=self.generator) < self.lapse
        random = torch.randint(0, k, (n,), generator=self.generator)
        return torch.where(lapses, random, choice)

    def two_afc(
        self, query: torch.Tensor, first: torch.Tensor, second: torch.Tensor
    ) -> torch.Tensor:
        """0 (first) or 1 (second) per query."""
        d = torch.stack([self.judge(query, first), self.judge(query, second)], dim=1)
        return self._choose(d.cpu())

    def match(self, queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """Index of the chosen reference among each query's k (references: (N, k, C, H, W))."""
        n, k = references.shape[:2]
        d = self.judge(queries.repeat_interleave(k, dim=0), references.flatten(0, 1))
        return self._choose(d.view(n, k).cpu())


@dataclass(frozen=True)
class BotSettings:
    """How simulated participants decide (the ``[bots]`` section and ``survey bots`` take
    these fields); checked on construction."""

    judge: str = setting(
        default="ssim",
        help=("The judge they decide with."),
    )
    lapse: float = setting(
        default=0.1,
        help=("Probability of answering at random on a trial."),
        check=Interval(float, 0.0, 1.0),
    )
    temperature: float = setting(
        default=0.0,
        help=("Softmax temperature of their choices (0: always the nearest)."),
        check=Interval(float, 0.0),
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def bots(self, n: int, seed: int = 0, device: torch.device | str = "cpu") -> list[Bot]:
        """``n`` bots sharing one judge, seeded ``seed``, ``seed + 1``...

        >>> [b.seed for b in BotSettings(judge="pixel").bots(2, seed=5)]
        [5, 6]
        """
        judge = get_judge(self.judge, device)
        return [
            Bot(judge, lapse=self.lapse, temperature=self.temperature, seed=seed + i)
            for i in range(n)
        ]
