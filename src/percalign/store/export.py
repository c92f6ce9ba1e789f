"""The long export table: one row per answer with everything needed to analyse it, and
cells made safe for spreadsheets."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from percalign.store.db import ItemRow, ParticipantRow, ResponseRow, SlotTrialRow, StimulusRow

__all__ = ["EXPORT_COLUMNS", "export_rows", "spreadsheet_safe"]

#: Columns of the export that every study has (condition and provenance columns come on top).
EXPORT_COLUMNS = [
    "participant",
    "platform",
    "platform_pid",
    "platform_study",
    "platform_session",
    "status",
    "trial",
    "item",
    "query",
    "candidates",
    "display_order",
    "correct_position",
    "choice",
    "correct",
    "chance",
    "rt_ms",
    "client_time",
    "server_rt_ms",
    "server_time",
    "page_version",
    "is_catch",
    "is_repeat",
    "screen",
]


def spreadsheet_safe(value: Any) -> Any:
    """``value`` for a CSV cell: text a spreadsheet would run as a formula (it begins with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``.

    >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("-1"), spreadsheet_safe(-1)
    ("'=HYPERLINK(1)", "'-1", -1)
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_rows(engine: Engine, hash_ids: bool = False) -> list[dict[str, Any]]:
    """One row per answer, with everything needed to analyse it (the long export table)."""
    session = sessionmaker(engine)
    rows = []
    with session() as s:
        people = {p.id: p for p in s.scalars(select(ParticipantRow))}
        stimuli = {st.id: st for st in s.scalars(select(StimulusRow))}
        items = {i.id: i for i in s.scalars(select(ItemRow))}
        trials = {(t.slot, t.position): t for t in s.scalars(select(SlotTrialRow))}
        for r in s.scalars(
            select(ResponseRow).order_by(ResponseRow.participant, ResponseRow.position)
        ):
            p = people[r.participant]
            t = trials[(p.slot, r.position)]
            item = items[r.item]
            query = stimuli.get(item.query)
            pid = p.platform_pid
            if hash_ids:
                pid = hashlib.sha256(pid.encode()).hexdigest()[:16]
            rows.append(
                {
                    "participant": p.id,
                    "platform": p.platform,
                    "platform_pid": pid,
                    "platform_study": p.platform_study,
                    "platform_session": p.platform_session,
                    "status": p.status,
                    "trial": r.position,
                    "item": item.id,
                    **{k: v for k, v in item.condition.items() if k != "catch"},
                    **(
                        {f"iri_{k}": v for k, v in query.provenance.items() if k != "code"}
                        if query is not None and query.kind == "iri"
                        else {}
                    ),
                    "query": item.query,
                    "candidates": "|".join(item.candidates),
                    "display_order": "|".join(map(str, t.display_order)),
                    "correct_position": t.display_order.index(0),
                    "choice": r.choice,
                    "correct": int(r.correct),
                    "chance": 1.0 / len(item.candidates),
                    "rt_ms": r.rt_ms,
                    "client_time": r.client_time,
                    "server_rt_ms": r.server_rt_ms,
                    "server_time": r.server_time.isoformat(),
                    "page_version": r.page_version,
                    "is_catch": bool(t.is_catch),
                    "is_repeat": bool(t.is_repeat),
                    # the first trial of its matching screen (None: a trial of its own)
                    "screen": t.screen,
                }
            )
    return rows
