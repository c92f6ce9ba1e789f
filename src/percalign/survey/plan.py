"""What a survey plan is made of (pure data): items, trials, and the plan that holds them.

:func:`~percalign.survey.design.make_plan` and
:func:`~percalign.survey.screens.clustering_plan` make plans; the study folder stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Item", "Plan", "Trial"]


@dataclass(frozen=True)
class Item:
    """One question: which candidate does the query look more like?"""

    id: str
    query: str  # stimulus id of the IRI (or, for catch items, of a candidate)
    candidates: tuple[str, ...]  # stimulus ids; candidates[0] is the correct one
    condition: Mapping[str, Any] = field(default_factory=dict)
    is_catch: bool = False


@dataclass(frozen=True)
class Trial:
    """An item as one participant sees it: candidates in display order."""

    item: str
    order: tuple[int, ...]  # display position -> index into item.candidates
    is_catch: bool = False
    is_repeat: bool = False
    screen: int | None = None  # on a matching screen: the position of its first trial

    @property
    def correct_position(self) -> int:
        return self.order.index(0)


@dataclass(frozen=True)
class Plan:
    """Everything a survey needs to run: items, slots, and the settings that made them."""

    items: dict[str, Item]
    slots: list[list[Trial]]
    settings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "items": [asdict(i) for i in self.items.values()],
            "slots": [[asdict(t) for t in slot] for slot in self.slots],
        }
