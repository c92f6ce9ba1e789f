"""How far a study is from its promise of R judgments per item, counted only from the
participants whose answers are analysed: completed and not excluded.

Pure functions of the database and the plan: the admin API reports them, and a study served
with ``--close-when-covered`` closes itself when no item is short.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from percalign.store.db import ParticipantRow, ResponseRow

__all__ = ["coverage", "participant_table", "still_needed"]


def still_needed(slots: Mapping[int, Sequence[str]], short: Mapping[str, int]) -> int:
    """Completed participants still needed so that no item is short, if each new one takes
    the slot that helps most (a greedy estimate: the server hands out the least-used slot,
    which in a balanced plan is the same thing).

    Args:
        slots: the (non-catch) items of each slot.
        short: judgments each short item still lacks.

    >>> still_needed({0: ["a", "b"], 1: ["b", "c"]}, {"a": 1, "c": 1})
    2
    >>> still_needed({0: ["a", "b"], 1: ["b", "c"]}, {"b": 2})
    2
    """
    lacking = {k: v for k, v in short.items() if v > 0}
    items = {k: set(v) for k, v in slots.items()}
    needed = 0
    while lacking:
        best = max(items, key=lambda k: (len(items[k] & lacking.keys()), -k), default=None)
        helps = items[best] & lacking.keys() if best is not None else set()
        if not helps:  # no slot shows these items: the plan cannot cover them
            break
        for item in helps:
            lacking[item] -= 1
            if lacking[item] == 0:
                del lacking[item]
        needed += 1
    return needed


def coverage(
    engine: Engine, slots: Mapping[int, Sequence[str]], judgments_per_item: int
) -> dict[str, Any]:
    """Items short of ``judgments_per_item`` judgments from completed participants, how many
    more participants that takes, and the median time per trial and per session.

    Args:
        engine: the study database.
        slots: the (non-catch) items of each slot of the plan.
        judgments_per_item: R, the judgments the design promised per item.
    """
    items = sorted({i for trials in slots.values() for i in trials})
    completed = ParticipantRow.status == "completed"
    with engine.connect() as c:
        counts = dict(
            c.execute(
                select(ResponseRow.item, func.count(func.distinct(ResponseRow.participant)))
                .join(ParticipantRow, ParticipantRow.id == ResponseRow.participant)
                .where(completed)
                .group_by(ResponseRow.item)
            ).all()
        )
        trial_ms = [
            float(v or 0.0)  # never None: the query leaves those out
            for (v,) in c.execute(
                select(ResponseRow.server_rt_ms)
                .join(ParticipantRow, ParticipantRow.id == ResponseRow.participant)
                .where(completed, ResponseRow.server_rt_ms.is_not(None))
            )
        ]
        spans = [
            (end - start).total_seconds()
            for start, end in c.execute(
                select(ParticipantRow.created_at, ParticipantRow.completed_at).where(
                    completed, ParticipantRow.platform != "bot"
                )
            )
            if start is not None and end is not None
        ]
    short = {i: int(counts.get(i, 0)) for i in items if counts.get(i, 0) < judgments_per_item}
    return {
        "judgments_per_item": judgments_per_item,
        "items": len(items),
        "items_short": short,
        "participants_needed": still_needed(
            slots, {i: judgments_per_item - n for i, n in short.items()}
        ),
        "median_trial_ms": statistics.median(trial_ms) if trial_ms else None,
        "median_session_s": statistics.median(spans) if spans else None,
    }


def participant_table(
    engine: Engine, totals: Mapping[int, int], silent_since: datetime, limit: int = 10_000
) -> list[dict[str, Any]]:
    """Every participant (newest first, at most ``limit``): status, slot, trials answered.

    An active session silent since ``silent_since`` shows as ``abandoned`` even before the
    next session start marks it so in the database.
    """
    answered = (
        select(ResponseRow.participant, func.count().label("n"))
        .group_by(ResponseRow.participant)
        .subquery()
    )
    last = func.coalesce(ParticipantRow.last_active_at, ParticipantRow.created_at)
    with engine.connect() as c:
        rows = c.execute(
            select(
                ParticipantRow.id,
                ParticipantRow.status,
                ParticipantRow.slot,
                ParticipantRow.platform,
                ParticipantRow.created_at,
                last,
                func.coalesce(answered.c.n, 0),
            )
            .outerjoin(answered, answered.c.participant == ParticipantRow.id)
            .order_by(ParticipantRow.created_at.desc())
            .limit(limit)
        ).all()
    cutoff = _utc(silent_since)
    table = []
    for pid, status, slot, platform, created, active, n in rows:
        if status == "active" and active is not None and _utc(active) < cutoff:
            status = "abandoned"
        table.append(
            {
                "participant": pid,
                "status": status,
                "slot": slot,
                "platform": platform,
                "answered": int(n),
                "total": totals.get(slot, 0),
                "started": created.isoformat() if created else None,
                "last_active": active.isoformat() if active else None,
            }
        )
    return table


def _utc(t: datetime) -> datetime:
    """``t`` as naive UTC (SQLite gives naive UTC times back, PostgreSQL aware ones)."""
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t
