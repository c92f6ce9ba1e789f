"""What a survey must decide and when it may stop: :class:`Stopping`, the settings of a
sequential survey (the study's ``[scoring]`` questions, ``percalign survey build``'s options),
and the :class:`~percalign.scoring.sequential.SequentialPlan` they declare.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from percalign._settings import Interval, OneOf, check_settings, setting
from percalign.errors import ConfigError
from percalign.scoring.boundaries import SPENDING
from percalign.scoring.sequential import Question, SequentialPlan

__all__ = ["STOPPING_FIELDS", "Stopping", "describe_looks"]


@dataclass(frozen=True)
class Stopping:
    """What a survey must decide, and when it may stop: the declared questions of a
    sequential study (:mod:`percalign.scoring.sequential`), its budget and its looks.

    No question (neither ``compare`` nor ``halfwidth``): the survey runs its fixed plan.
    """

    compare: str | None = setting(
        default=None,
        help=(
            "Decide whether the levels of this condition column differ (say `model`); the "
            "survey looks at its answers as they come and stops when that is decided."
        ),
        shown="none: no comparison",
    )
    compare_levels: list[str] | None = setting(
        default=None,
        help=(
            "The two levels to compare; none: every pair of levels (each pair then at alpha / "
            "pairs)."
        ),
        shown="every pair",
    )
    difference: float = setting(
        default=0.1,
        help=(
            "The smallest difference of interest, in proportion correct (0.1: 10 points): "
            "the comparison has the declared power to find it."
        ),
        check=Interval(float, 0.0, 1.0, low_open=True),
    )
    halfwidth: float | None = setting(
        default=None,
        help=(
            "Or (also) decide each level of `halfwidth_of` to within this half-width; the "
            "survey stops when every level has reached it (or cannot)."
        ),
        shown="none",
        check=Interval(float, 0.0, 0.5, low_open=True),
    )
    halfwidth_of: str = setting(
        default="model",
        help="The condition column whose levels `halfwidth` is about.",
    )
    alpha: float = setting(
        default=0.05,
        help=(
            "The false-positive rate (two-sided) of each question over all its looks; for "
            "`halfwidth`, 1 - the joint coverage of its intervals."
        ),
        check=Interval(float, 0.0, 0.5, low_open=True),
    )
    power: float = setting(
        default=0.8,
        help="The chance of finding a difference of `difference`, if there is one.",
        check=Interval(float, 0.5, 0.99),
    )
    spending: str = setting(
        default="obrien-fleming",
        help=(
            "How the error rates are spent over the looks (`obrien-fleming`: little early, "
            "`pocock`: evenly)."
        ),
        check=OneOf(tuple(SPENDING)),
    )
    budget: int = setting(
        default=0,
        help=(
            "The most participants whose answers are kept (finished, past the exclusions); "
            "needed with a question. The survey closes when it is reached."
        ),
        check=Interval(int, 0),
    )
    look_every: int = setting(
        default=10,
        help="Look at the answers after every this many kept participants (and at the budget).",
        check=Interval(int, 2),
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.compare_levels is not None and len(self.compare_levels) != 2:
            raise ConfigError(
                f"compare_levels names two levels of {self.compare!r}; got "
                f"{list(self.compare_levels)}. Leave it out to compare every pair."
            )
        if self.asks and self.budget == 0:
            raise ConfigError(
                "A sequential survey needs a budget: the most participants it may keep; set "
                "budget (say 60)."
            )
        if self.asks:
            self.plan()  # refuses a budget smaller than the first look

    @property
    def asks(self) -> bool:
        """Whether any question is declared (else the survey runs its fixed plan)."""
        return self.compare is not None or self.halfwidth is not None

    def plan(self) -> SequentialPlan:
        """The :class:`~percalign.scoring.sequential.SequentialPlan` of the questions."""
        rates = (self.alpha, self.power, self.spending)
        questions = []
        if self.compare is not None:
            levels = tuple(self.compare_levels or ())
            questions.append(Question(self.compare, "compare", levels, self.difference, *rates))
        if self.halfwidth is not None:
            questions.append(Question(self.halfwidth_of, "halfwidth", (), self.halfwidth, *rates))
        return SequentialPlan(tuple(questions), self.budget, every=self.look_every)

    @property
    def columns(self) -> list[str]:
        """The condition columns the questions name."""
        return [q.column for q in self.plan().questions] if self.asks else []

    def describe(self) -> list[str]:
        """The declaration in sentences (``survey build``, ``survey status``, the report).

        >>> for line in Stopping(compare="model", budget=30).describe(): print(line)
        Decides whether the levels of 'model' differ (every pair of them, each at alpha 0.05 / the number of pairs) by at least 10 points, with power 0.8 (obrien-fleming spending).
        Looks after 10, 20, 30 kept participants; closes when every question is decided, or at 30.
        """  # noqa: E501
        lines = []
        if self.compare is not None:
            which = (
                " and ".join(repr(v) for v in self.compare_levels)
                if self.compare_levels
                else f"every pair of them, each at alpha {self.alpha:g} / the number of pairs"
            )
            lines.append(
                f"Decides whether the levels of {self.compare!r} differ ({which}) by at least "
                f"{self.difference * 100:g} points, with power {self.power:g} "
                f"({self.spending} spending)."
            )
        if self.halfwidth is not None:
            lines.append(
                f"Decides each level of {self.halfwidth_of!r} to within +-{self.halfwidth:g} "
                f"(intervals holding jointly at {1 - self.alpha:.0%} over the looks)."
            )
        looks = ", ".join(str(n) for n in self.plan().looks())
        lines.append(
            f"Looks after {looks} kept participants; closes when every question is decided, "
            f"or at {self.budget}."
        )
        return lines

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe_looks(state: dict[str, Any]) -> list[str]:
    """Where a sequential survey stands (its ``sequential`` progress), in sentences: the
    looks, each question's state, and whether to keep recruiting.

    >>> state = {"budget": 30, "looks": [10, 20, 30], "looks_taken": 1, "next_look": 20,
    ...          "kept": 10, "stopped": None, "recruit": True, "questions": [
    ...          {"question": "model: a - b", "state": "undecided", "looks": 1,
    ...           "participants": 10, "estimate": 0.05, "low": -0.2, "high": 0.3}]}
    >>> for line in describe_looks(state): print(line)
    Looks at 10, 20, 30 kept participants (budget 30): 1 taken, the next at 20.
      model: a - b: undecided at 10 participants; estimate +0.050, repeated CI [-0.200, +0.300]
    Keep recruiting.
    """
    looks = ", ".join(str(n) for n in state["looks"])
    following = f", the next at {state['next_look']}" if state["next_look"] else ""
    lines = [
        f"Looks at {looks} kept participants (budget {state['budget']}): "
        f"{state['looks_taken']} taken{following}."
    ]
    for q in state["questions"]:
        line = (
            f"  {q['question']}: {q['state']} at {q['participants']} participants; estimate "
            f"{q['estimate']:+.3f}, repeated CI [{q['low']:+.3f}, {q['high']:+.3f}]"
        )
        if q.get("state") == "undecided" and "needed" in q:
            line += (
                "; with these IRIs no budget reaches the declared power or half-width (more "
                "IRIs would)"
                if q["needed"] is None
                else f"; what was declared needs a budget of about {q['needed']} "
                "(from the answers so far)"
            )
        lines.append(line)
    stopped = state.get("stopped")
    if stopped:
        why = (
            "every question is decided"
            if stopped["reason"] == "decided"
            else "the budget is reached, with questions undecided"
        )
        saved = (
            f" ({state['budget'] - int(stopped['kept'])} of the budget of {state['budget']} "
            "not needed)"
            if stopped["reason"] == "decided"
            else ""
        )
        lines.append(
            f"Stop recruiting: {why} at {stopped['kept']} kept participants{saved}. Started "
            "sessions may finish; their answers are kept."
        )
    elif state["recruit"]:
        lines.append("Keep recruiting.")
    else:
        lines.append("Stop recruiting: the study was closed by hand.")
    return lines


#: the names of :class:`Stopping`'s settings
STOPPING_FIELDS = tuple(f.name for f in dataclasses.fields(Stopping))
