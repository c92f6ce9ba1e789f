"""Whether a participant paid attention: the pre-declared rules behind the failed code (pure).

Two rules, both declared when the survey is built and stored with it:

* **Catch accuracy**: the share of catch trials (the query is one of the candidates) answered
  with it, at least ``min_catch_accuracy``. The plan puts the catch trials' right answers on
  every side equally often within each participant (``design._Sides``), so a participant who
  always presses one side gets at most half of a 2AFC participant's catch trials right.
* **Side bias**: more than ``max_side_share`` of a participant's answers at one display
  position, over at least ``min_side_trials`` answers, fails. Within each participant's
  trials the plan balances where the right answer is, so answers that follow the images
  spread over the positions like the right answers do, whatever their accuracy; only
  answers that ignore the images pile up on one side. The default, more than 90% over at
  least 10 answers, is what side-blind random answering (each side with probability 1/2)
  reaches with probability 0.2% at 10 answers, at most 1.2% (at 11) for any count, under
  0.03% from 17 and 2e-8 at 40 (the README's default plan; exact binomial tails), and what
  any one-side clicker reaches always. With fewer than ``min_side_trials`` answers the share
  says too little and the rule does not apply (the catch rule still does).

Scoring applies the same side rule as a pre-declared exclusion
(:class:`~percalign.scoring.Exclusions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from percalign._checks import check_float, check_int

__all__ = ["AttentionRules", "attention_failures", "side_share"]


@dataclass(frozen=True)
class AttentionRules:
    """The rules a participant must pass to get the completed code.

    Attributes:
        min_catch_accuracy: lowest accepted share of catch trials answered right.
        max_side_share: highest accepted share of answers at any one display position ...
        min_side_trials: ... over at least this many answers (fewer: not applied).
    """

    min_catch_accuracy: float = 0.8
    max_side_share: float = 0.9
    min_side_trials: int = 10

    def __post_init__(self) -> None:
        owner = "AttentionRules"
        check_float(owner, "min_catch_accuracy", self.min_catch_accuracy, low=0.0, high=1.0)
        check_float(owner, "max_side_share", self.max_side_share, low=0.0, high=1.0)
        check_int(owner, "min_side_trials", self.min_side_trials, low=1)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def side_share(positions: Sequence[int]) -> float:
    """The share of answers at the most used display position (0 for no answers).

    >>> side_share([0, 0, 1, 0])
    0.75
    """
    if not positions:
        return 0.0
    counts: dict[int, int] = {}
    for p in positions:
        counts[p] = counts.get(p, 0) + 1
    return max(counts.values()) / len(positions)


def attention_failures(
    positions: Sequence[int],
    correct: Sequence[bool],
    is_catch: Sequence[bool],
    rules: AttentionRules,
) -> list[str]:
    """The rules a participant's answers break (empty: passed).

    Args:
        positions: the display position chosen in each answer (a screen's assignments
            each count as one answer).
        correct: whether each answer chose the right candidate.
        is_catch: whether each answer was to a catch trial.
        rules: the study's rules.

    >>> attention_failures([0] * 10, [True, False] * 5, [True] * 4 + [False] * 6, AttentionRules())
    ['catch accuracy 0.5 below 0.8', '100% of 10 answers on one side (over 90%)']
    """
    failed = []
    hits = [c for c, catch in zip(correct, is_catch, strict=True) if catch]
    if hits and sum(hits) / len(hits) < rules.min_catch_accuracy:
        failed.append(
            f"catch accuracy {sum(hits) / len(hits):.2g} below {rules.min_catch_accuracy:g}"
        )
    share = side_share(positions)
    if len(positions) >= rules.min_side_trials and share > rules.max_side_share:
        failed.append(
            f"{share:.0%} of {len(positions)} answers on one side (over {rules.max_side_share:.0%})"
        )
    return failed
