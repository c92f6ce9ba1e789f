"""The looks of a sequential survey: its answers decided on as they come, and the study
closed when its declared questions are settled or its budget is spent.

A survey built with questions (:class:`~percalign.scoring.stopping.Stopping`) looks at the
answers of its kept participants (finished, past the exclusion rules it was built with) each
time their number reaches the next declared look, decides every unsettled question with
error-spending boundaries (:func:`~percalign.scoring.sequential.decide`), and records the
look, one row per question, in the ``looks`` table. When every question is settled, or the
budget of kept participants is reached, the study closes to new sessions: sessions already
started finish, and their answers are kept (and scored, after the looks). Until then, new
sessions are refused while the sessions in progress could already fill the budget.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from percalign.scoring.allocation import condition_needs
from percalign.scoring.budget import required_budget
from percalign.scoring.exclusions import Exclusions, apply_exclusions
from percalign.scoring.sequential import SETTLED, Look, decide, settled
from percalign.scoring.stopping import Stopping
from percalign.store.db import (
    ItemRow,
    LookRow,
    MetaRow,
    ParticipantRow,
    ResponseRow,
    SlotTrialRow,
    now,
)
from percalign.store.export import export_rows
from percalign.store.participants import Participants

__all__ = ["Looks", "decision_table"]

log = logging.getLogger("percalign.survey")


class Looks(Participants):
    """Looks at a sequential survey's answers, and its stopping."""

    _stopping_cache: Stopping | bool | None = False  # False: not read yet
    _items_cache: list[tuple[str, dict[str, Any], bool]] | None = None

    def stopping(self) -> Stopping | None:
        """The survey's declared questions, budget and looks (None: a fixed plan). Written at
        build and never changed, so read once per process."""
        if self._stopping_cache is False:
            declared = self.meta("stopping")
            self._stopping_cache = Stopping(**declared) if declared else None
        return self._stopping_cache  # type: ignore[return-value]

    def history(self) -> dict[str, tuple[Look, ...]]:
        """Every question's looks so far, oldest first, by contrast label."""
        history: dict[str, tuple[Look, ...]] = {}
        with self._session() as s:
            for row in s.scalars(select(LookRow).order_by(LookRow.look, LookRow.contrast)):
                history[row.contrast] = (*history.get(row.contrast, ()), Look(**row.values))
        return history

    def looks_taken(self, s: Any = None) -> int:
        """How many looks were taken (in the transaction ``s`` when given)."""
        if s is None:
            with self._session() as session:
                return self.looks_taken(session)
        last = s.scalar(select(func.max(LookRow.look)))
        return 0 if last is None else int(last) + 1

    def next_look(self) -> int | None:
        """Kept participants at the next look (None: no look is left, or a fixed plan)."""
        stopping = self.stopping()
        if stopping is None or self.meta("closed", False):
            return None
        looks = stopping.plan().looks()
        taken = self.looks_taken()
        return looks[taken] if taken < len(looks) else None

    def needs(self) -> dict[str, dict[str, float]] | None:
        """Each question column's need by level at the last look (None before the first):
        the variance of its alignment that more participants can still remove, 0 for levels
        whose questions are settled (:func:`~percalign.scoring.allocation.condition_needs`)."""
        return self.meta("needs") if self.stopping() is not None else None

    def items(self) -> list[tuple[str, dict[str, Any], bool]]:
        """The plan's items: id, condition and whether a catch item (read once: they never
        change)."""
        if self._items_cache is None:
            with self._session() as s:
                self._items_cache = [
                    (row.id, dict(row.condition), bool(row.is_catch))
                    for row in s.scalars(select(ItemRow).order_by(ItemRow.id))
                ]
        return self._items_cache

    def judgments(self) -> dict[str, int]:
        """Judgments per item so far or to come: every answer (whatever it was), and the
        trials still ahead of active sessions (so that participants who start together are
        not all given the same least-judged items)."""
        ahead = (
            select(SlotTrialRow.item, func.count())
            .join(ParticipantRow, ParticipantRow.slot == SlotTrialRow.slot)
            .outerjoin(
                ResponseRow,
                (ResponseRow.participant == ParticipantRow.id)
                & (ResponseRow.position == SlotTrialRow.position),
            )
            .where(ParticipantRow.status == "active", ResponseRow.participant.is_(None))
            .group_by(SlotTrialRow.item)
        )
        with self._session() as s:
            counts = dict(
                s.execute(select(ResponseRow.item, func.count()).group_by(ResponseRow.item)).all()
            )
            for item, n in s.execute(ahead).all():
                counts[item] = counts.get(item, 0) + int(n)
        return counts

    def kept_answers(self) -> pd.DataFrame:
        """The answers the looks decide on: finished participants', past the exclusions."""
        table = pd.DataFrame(export_rows(self.engine))
        return decision_table(table, Exclusions(**(self.meta("exclusions") or {})))

    def take_look(self) -> list[Look]:
        """Look at the answers if the next declared look is due; close the study when every
        question is settled or the budget is reached. Returns the looks taken now (empty
        when none was due). Safe to call from any worker at any time: a look is taken once."""
        stopping = self.stopping()
        due = self.next_look()
        if stopping is None or due is None or self._finished() < due:
            return []
        table = self.kept_answers()
        kept = int(table["participant"].nunique()) if len(table) else 0
        if kept < due:
            return []
        taken = self.looks_taken()
        history = self.history()
        decided = decide(stopping.plan(), table, history)
        new = [looks[-1] for label, looks in decided.items() if looks != history.get(label)]
        stop = settled(decided) or kept >= stopping.budget
        plan = stopping.plan()
        needed = _needed(stopping, table, decided) if not stop else {}
        needs = {
            column: condition_needs(plan, table, decided, column)
            for column in dict.fromkeys(stopping.columns)
        }
        with self._write() as s:
            # one look at a time, between workers too (a row lock on PostgreSQL)
            s.execute(select(MetaRow.key).where(MetaRow.key == "plan").with_for_update())
            if self.looks_taken(s) != taken:
                return []  # another worker took this look
            for look in new:
                s.add(
                    LookRow(
                        look=taken,
                        contrast=look.label,
                        participants=look.participants,
                        decision=look.decision,
                        values=dataclasses.asdict(look),
                        created_at=now(),
                    )
                )
            finished = self._finished(s)
            s.merge(MetaRow(key="kept", value={"kept": kept, "finished": finished}))
            # where the next participants' answers are needed (new slots follow it)
            s.merge(MetaRow(key="needs", value=needs))
            s.merge(MetaRow(key="needed", value=needed))
            if stop:
                reason = "decided" if settled(decided) else "budget"
                s.merge(MetaRow(key="closed", value=True))
                s.merge(MetaRow(key="stopped", value={"reason": reason, "kept": kept}))
        states = ", ".join(f"{look.label}: {look.decision}" for look in new)
        log.info("Look %d at %d kept participants: %s", taken + 1, kept, states)
        if stop:
            log.warning(
                "Stop recruiting: %s after %d kept participants of a budget of %d; the study "
                "is closed to new sessions (started ones can finish).",
                "every question is decided"
                if settled(decided)
                else "the budget is reached, with questions undecided",
                kept,
                stopping.budget,
            )
        return new

    def _finished(self, s: Any = None) -> int:
        """Participants who finished and passed the attention rules (status completed)."""
        query = select(func.count()).where(ParticipantRow.status == "completed")
        if s is not None:
            return int(s.scalar(query) or 0)
        with self._session() as session:
            return int(session.scalar(query) or 0)

    def budget_full(self, s: Any) -> bool:
        """Whether sessions in progress and kept participants could already fill the budget
        (new sessions then wait; those excluded at the last look do not count)."""
        stopping = self.stopping()
        if stopping is None:
            return False
        counts = dict(
            s.execute(
                select(ParticipantRow.status, func.count())
                .where(ParticipantRow.status.in_(("active", "completed")))
                .group_by(ParticipantRow.status)
            ).all()
        )
        row = s.get(MetaRow, "kept")  # no second session inside a write transaction
        seen = row.value if row is not None else {"kept": 0, "finished": 0}
        excluded = max(0, int(seen["finished"]) - int(seen["kept"]))
        taken = int(counts.get("active", 0)) + int(counts.get("completed", 0)) - excluded
        return taken >= stopping.budget

    def sequential_state(self) -> dict[str, Any] | None:
        """Where a sequential survey stands (None: a fixed plan): its budget, the declared
        looks, the next one, each question's state at its last look, and whether to recruit.
        """
        stopping = self.stopping()
        if stopping is None:
            return None
        needed = self.meta("needed") or {}
        questions = [
            {
                "question": label,
                "state": looks[-1].decision,
                **({"needed": needed[label]} if label in needed else {}),
                "looks": len(looks),
                "participants": looks[-1].participants,
                "estimate": looks[-1].estimate,
                "low": looks[-1].low,
                "high": looks[-1].high,
            }
            for label, looks in self.history().items()
        ]
        stopped = self.meta("stopped")
        closed = bool(self.meta("closed", False))
        return {
            "budget": stopping.budget,
            "looks": list(stopping.plan().looks()),
            "looks_taken": self.looks_taken(),
            "next_look": self.next_look(),
            "kept": int((self.meta("kept") or {}).get("kept", 0)),
            "questions": questions,
            "stopped": stopped,
            "recruit": not closed,
        }


def _needed(
    stopping: Stopping, table: pd.DataFrame, decided: dict[str, tuple[Look, ...]]
) -> dict[str, int | None]:
    """Each undecided question's budget for its declared power (or half-width) from the
    answers so far (:func:`~percalign.scoring.budget.required_budget`): kept participants, or
    None when these IRIs cannot reach it at any budget."""
    plan = stopping.plan()
    try:
        found = required_budget(plan.questions, table, every=stopping.look_every)
    except (ValueError, ArithmeticError):  # advice only: answers without spread give none
        log.info("No budget advice at this look: the answers so far give no variance to plan on")
        return {}
    return {
        label: need.participants
        for label, need in found.items()
        if decided.get(label) and decided[label][-1].decision not in SETTLED
    }


def decision_table(table: pd.DataFrame, rules: Exclusions) -> pd.DataFrame:
    """The answers a look decides on, from the long export table: completed participants'
    answers past ``rules`` (catch trials removed), each with its ``target`` (the IRI's own,
    the first candidate) for the crossed variance."""
    if not len(table):
        return table
    done = table[table["status"] == "completed"]
    if not len(done):
        return done
    done = done.assign(target=done["candidates"].astype(str).str.split("|").str[0])
    kept, _ = apply_exclusions(done, rules)
    return kept
