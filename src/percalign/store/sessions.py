"""Participants and their answers in the study database: the survey's only SQL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from percalign.store.db import (
    ItemRow,
    MetaRow,
    ParticipantRow,
    ResponseRow,
    SlotTrialRow,
    StimulusRow,
    now,
)

__all__ = ["EXPORT_COLUMNS", "Answer", "SurveyStore", "TrialView", "export_rows"]

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
    "server_time",
    "is_catch",
    "is_repeat",
]


class SurveyError(Exception):
    """A request the survey refuses; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TrialView:
    position: int
    total: int
    query: str
    candidates: list[str]  # stimulus ids in display order


@dataclass(frozen=True)
class Answer:
    position: int
    next_position: int | None
    done: bool
    duplicate: bool
    outcome: str | None = None  # when done: "completed" or "failed_attention"


class SurveyStore:
    """Sessions, trials and answers of one study database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    # -- study state -------------------------------------------------------------
    def meta(self, key: str, default: Any = None) -> Any:
        with self._session() as s:
            row = s.get(MetaRow, key)
            return default if row is None else row.value

    def set_meta(self, key: str, value: Any) -> None:
        with self._session() as s, s.begin():
            s.merge(MetaRow(key=key, value=value))

    def stimulus_path(self, sha: str) -> str | None:
        with self._session() as s:
            row = s.get(StimulusRow, sha)
            return None if row is None else row.path

    # -- participants ------------------------------------------------------------
    def start(
        self,
        platform: str,
        pid: str,
        study: str | None = None,
        session_id: str | None = None,
        screen: dict[str, Any] | None = None,
    ) -> tuple[ParticipantRow, bool]:
        """The participant for (platform, pid): resumed if known, else new on the least-used
        slot. Returns (participant, resumed)."""
        with self._session() as s:
            found = s.scalar(
                select(ParticipantRow).where(
                    ParticipantRow.platform == platform, ParticipantRow.platform_pid == pid
                )
            )
            if found is not None:
                return found, True
        if self.meta("closed", False):
            raise SurveyError(403, "This study is closed; no new sessions start.")
        with self._session() as s:
            slots = [r[0] for r in s.execute(select(SlotTrialRow.slot).distinct())]
            used = dict(
                s.execute(
                    select(ParticipantRow.slot, func.count()).group_by(ParticipantRow.slot)
                ).all()
            )
        slot = min(slots, key=lambda k: (used.get(k, 0), k))
        row = ParticipantRow(
            id=secrets.token_hex(16),
            slot=slot,
            platform=platform,
            platform_pid=pid,
            platform_study=study,
            platform_session=session_id,
            status="active",
            created_at=now(),
            screen=screen,
        )
        try:
            with self._session() as s, s.begin():
                s.add(row)
        except IntegrityError:  # the same person started twice at once: resume the first
            return self.start(platform, pid, study, session_id, screen)
        return row, False

    def participant(self, pid: str) -> ParticipantRow:
        with self._session() as s:
            row = s.get(ParticipantRow, pid)
        if row is None:
            raise SurveyError(404, "Unknown participant; start again from your study link.")
        return row

    def _trials(self, s: Session, slot: int) -> list[SlotTrialRow]:
        return list(
            s.scalars(
                select(SlotTrialRow)
                .where(SlotTrialRow.slot == slot)
                .order_by(SlotTrialRow.position)
            )
        )

    def progress(self, pid: str) -> tuple[int, int]:
        """(answered, total) for a participant."""
        p = self.participant(pid)
        with self._session() as s:
            total = len(self._trials(s, p.slot))
            answered = (
                s.scalar(
                    select(func.count())
                    .select_from(ResponseRow)
                    .where(ResponseRow.participant == pid)
                )
                or 0
            )
        return int(answered), total

    def trial(self, pid: str, position: int) -> TrialView:
        p = self.participant(pid)
        answered, total = self.progress(pid)
        if not 0 <= position < total:
            raise SurveyError(404, f"No trial {position}; trials run from 0 to {total - 1}.")
        if position > answered:
            raise SurveyError(
                409, f"Trial {position} comes after trial {answered}, which is not answered yet."
            )
        with self._session() as s:
            t = s.get(SlotTrialRow, (p.slot, position))
            item = s.get(ItemRow, t.item) if t else None
            if t is None or item is None:
                raise SurveyError(404, "Trial not found.")
            return TrialView(
                position, total, item.query, [item.candidates[i] for i in t.display_order]
            )

    def answer(
        self, pid: str, position: int, choice: int, rt_ms: float | None, client_time: float | None
    ) -> Answer:
        """Store an answer once. A repeat of an acknowledged answer changes nothing."""
        p = self.participant(pid)
        answered, total = self.progress(pid)
        if not 0 <= position < total:
            raise SurveyError(404, f"No trial {position}; trials run from 0 to {total - 1}.")
        with self._session() as s:
            existing = s.get(ResponseRow, (pid, position))
        if existing is not None:
            finished = answered >= total
            return Answer(
                position,
                None if finished else answered,
                finished,
                duplicate=True,
                outcome=self.participant(pid).status if finished else None,
            )
        if position != answered:
            raise SurveyError(
                409, f"Answer trial {answered} first (got an answer for trial {position})."
            )
        with self._session() as s:
            t = s.get(SlotTrialRow, (p.slot, position))
            if t is None:
                raise SurveyError(404, "Trial not found.")
            if not 0 <= choice < len(t.display_order):
                raise SurveyError(
                    422,
                    f"'choice' must be a display position from 0 to "
                    f"{len(t.display_order) - 1}; got {choice}.",
                )
            correct = t.display_order[choice] == 0
            item = t.item
        try:
            with self._session() as s, s.begin():
                s.add(
                    ResponseRow(
                        participant=pid,
                        position=position,
                        item=item,
                        choice=choice,
                        correct=correct,
                        rt_ms=rt_ms,
                        client_time=client_time,
                        server_time=now(),
                    )
                )
                if position == total - 1:
                    s.flush()
                    row = s.get(ParticipantRow, pid)
                    if row is not None:
                        row.status, row.completed_at = self._outcome(s, p.slot, pid), now()
        except IntegrityError:  # a concurrent duplicate won the race: same outcome
            pass
        done = position == total - 1
        return Answer(
            position,
            None if done else position + 1,
            done,
            duplicate=False,
            outcome=self.participant(pid).status if done else None,
        )

    def _outcome(self, s: Session, slot: int, pid: str) -> str:
        """'failed_attention' when catch-trial accuracy is below the study's threshold."""
        threshold = float(self.meta("min_catch_accuracy", 0.0) or 0.0)
        catch = {t.position for t in self._trials(s, slot) if t.is_catch}
        hits = [
            r.correct
            for r in s.scalars(select(ResponseRow).where(ResponseRow.participant == pid))
            if r.position in catch
        ]
        if hits and sum(hits) / len(hits) < threshold:
            return "failed_attention"
        return "completed"

    # -- admin -------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._session() as s:
            statuses = dict(
                s.execute(
                    select(ParticipantRow.status, func.count()).group_by(ParticipantRow.status)
                ).all()
            )
            answers = s.scalar(select(func.count()).select_from(ResponseRow)) or 0
            per_item = dict(
                s.execute(select(ResponseRow.item, func.count()).group_by(ResponseRow.item)).all()
            )
        return {
            "participants": statuses,
            "started": sum(statuses.values()),
            "completed": statuses.get("completed", 0),
            "answers": int(answers),
            "answers_per_item": per_item,
            "closed": bool(self.meta("closed", False)),
        }


def export_rows(engine: Engine, hash_ids: bool = False) -> list[dict[str, Any]]:
    """One row per answer, with everything needed to analyse it (the long export table)."""
    import hashlib

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
                    "server_time": r.server_time.isoformat(),
                    "is_catch": bool(t.is_catch),
                    "is_repeat": bool(t.is_repeat),
                }
            )
    return rows
