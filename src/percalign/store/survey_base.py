"""The survey database's shared ground: write transactions, study state (meta, stimuli), the
plan every session follows, and the study's secret key.

:class:`SurveyBase` is what the parts of :class:`~percalign.store.sessions.SurveyStore`
(participants, answers, comments) are built on; it is the survey's only SQL with them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from percalign.errors import PercalignError
from percalign.scoring.attention import AttentionRules
from percalign.store.db import ItemRow, MetaRow, ResponseRow, SlotTrialRow, StimulusRow
from percalign.store.signing import Signer

__all__ = [
    "Plan",
    "PlanTrial",
    "SurveyBase",
    "SurveyError",
    "check_position",
    "screen_size",
    "step_starts",
]


class SurveyError(PercalignError):
    """A request the survey refuses; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PlanTrial:
    item: str
    order: tuple[int, ...]  # candidate index shown at each display position
    is_catch: bool
    screen: int | None = None  # on a matching screen: the position of its first trial


@dataclass(frozen=True)
class Plan:
    """The trials of every slot and the items: written once by ``survey build``."""

    slots: dict[int, list[PlanTrial]]
    items: dict[str, tuple[str, list[str]]]  # id -> (query, candidates)
    attention: AttentionRules
    min_display_ms: int
    judgments_per_item: int
    base_slots: int  # slots 0..base_slots-1 are the plan's; later ones, a participant's own


class SurveyBase:
    """One study database: transactions, study state, the plan and the key.

    Safe to share between threads. The plan (slots, items, stimuli) never changes once built,
    so it is read once per process; participants' answers are always read from the database.
    On SQLite, writers take turns behind a lock shared by the threads and worker processes
    (SQLite has one writer anyway, and a lock hands over at once where SQLite's busy handler
    would sleep and poll). A write transaction never opens a second session: with every
    pooled connection taken by requests waiting on the same lock, it would wait for a
    connection that never comes.
    """

    def __init__(
        self,
        engine: Engine,
        abandon_after_s: float = 1800.0,
        clock: Callable[[], float] = time.time,
        unanswered_after_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.abandon_after_s = abandon_after_s
        # a session that never answered holds its slot this long (at most abandon_after_s)
        self.unanswered_after_s = min(abandon_after_s, unanswered_after_s or abandon_after_s)
        self.clock = clock
        self._session = sessionmaker(engine, expire_on_commit=False)
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._writer: Any = _Writer(database) if database else contextlib.nullcontext()
        self._plan_cache: Plan | None = None
        self._slots: dict[str, tuple[int, str]] = {}  # id -> (slot, platform)
        self._stimuli: dict[str, str] = {}
        self._steps: dict[int, dict[int, int]] = {}  # slot -> {first position: step}
        self.signer = Signer(self._key)  # tokens, image URLs, "shown" notes

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction, committed on leaving the block."""
        with self._writer, self._session() as s, s.begin():
            yield s

    # -- study state -------------------------------------------------------------
    def meta(self, key: str, default: Any = None) -> Any:
        with self._session() as s:
            row = s.get(MetaRow, key)
            return default if row is None else row.value

    def set_meta(self, key: str, value: Any) -> None:
        with self._write() as s:
            s.merge(MetaRow(key=key, value=value))

    def stimulus_path(self, sha: str) -> str | None:
        if sha not in self._stimuli:
            with self._session() as s:
                row = s.get(StimulusRow, sha)
            if row is None:
                return None
            self._stimuli[sha] = row.path
        return self._stimuli[sha]

    def _plan(self) -> Plan:
        if self._plan_cache is None:
            slots: dict[int, list[PlanTrial]] = {}
            with self._session() as s:
                rows = s.scalars(
                    select(SlotTrialRow).order_by(SlotTrialRow.slot, SlotTrialRow.position)
                )
                for t in rows:
                    slots.setdefault(t.slot, []).append(
                        PlanTrial(t.item, tuple(t.display_order), bool(t.is_catch), t.screen)
                    )
                items = {i.id: (i.query, list(i.candidates)) for i in s.scalars(select(ItemRow))}
                # every image a trial can show, so serving one needs no database lookup
                paths = s.execute(select(StimulusRow.id, StimulusRow.path))
                self._stimuli.update((sha, path) for sha, path in paths)
                threshold = s.get(MetaRow, "min_catch_accuracy")
                rules = s.get(MetaRow, "attention")
                settings = s.get(MetaRow, "plan")
            if rules is not None:
                attention = AttentionRules(**rules.value)
            else:  # a study built before the side rule keeps the rules it declared
                catch = float(threshold.value or 0) if threshold else 0.0
                attention = AttentionRules(min_catch_accuracy=catch, max_side_share=1.0)
            self._plan_cache = Plan(
                slots,
                items,
                attention,
                int((settings.value if settings else {}).get("min_display_ms", 0)),
                int((settings.value if settings else {}).get("judgments_per_item", 1)),
                int((settings.value if settings else {}).get("slots", len(slots))),
            )
        return self._plan_cache

    def _slot_trials(self, slot: int) -> list[PlanTrial]:
        """The trials of ``slot``: the plan's, or those made for one participant of a
        sequential survey (read once, as they never change; another worker may have made
        them since this process read the plan)."""
        slots = self._plan().slots
        if slot not in slots:
            with self._session() as s:
                rows = s.scalars(
                    select(SlotTrialRow)
                    .where(SlotTrialRow.slot == slot)
                    .order_by(SlotTrialRow.position)
                )
                slots[slot] = [
                    PlanTrial(t.item, tuple(t.display_order), bool(t.is_catch), t.screen)
                    for t in rows
                ]
        return slots[slot]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def silent_since(self) -> datetime:
        """Sessions with no answer since this time have given up their slot."""
        return datetime.fromtimestamp(self.clock() - self.abandon_after_s, timezone.utc)

    @property
    def min_display_ms(self) -> int:
        """How long a trial must have been served before its answer is accepted."""
        return self._plan().min_display_ms

    # -- session tokens ----------------------------------------------------------
    def _key(self) -> bytes:
        """The study's secret key: made once per study and kept in the database, so every
        worker and every restart signs alike."""
        secret = self.meta("session_secret")
        if secret is None:
            try:
                with self._write() as s:
                    s.add(MetaRow(key="session_secret", value=secrets.token_hex(32)))
            except IntegrityError:  # another worker made it first
                pass
            secret = self.meta("session_secret")
        return bytes.fromhex(secret)

    def check_token(self, pid: str, token: str | None) -> None:
        """Raise 401 without a token and 403 with one that is not ``pid``'s."""
        if not token:
            raise SurveyError(
                401, "Session token missing; send 'Authorization: Bearer TOKEN' from /api/sessions."
            )
        if not hmac.compare_digest(token, self.signer.session_token(pid)):
            raise SurveyError(
                403, "This session token is not this participant's; start from your study link."
            )

    @staticmethod
    def _answered(s: Session | Connection, pid: str) -> int:
        """Answers are stored strictly in order, so they are exactly positions 0..n-1."""
        n = s.scalar(_COUNT_ANSWERS, {"pid": pid})
        return int(n or 0)


class _Writer:
    """The one-writer lock of a SQLite database file: a thread lock, then a lock file beside
    the database (``flock``) for the other worker processes."""

    def __init__(self, database: str) -> None:
        self._thread = threading.Lock()
        self._path = f"{database}-writer.lock"
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


_COUNT_ANSWERS = (
    select(func.count()).select_from(ResponseRow).where(ResponseRow.participant == bindparam("pid"))
)


def step_starts(trials: list[PlanTrial]) -> list[int]:
    """The positions where a trial (or a matching screen) begins: one per step."""
    return [p for p, t in enumerate(trials) if t.screen is None or t.screen == p]


def screen_size(trials: list[PlanTrial], position: int) -> int | None:
    """How many trials the matching screen starting at ``position`` has (None: not one)."""
    if trials[position].screen != position:
        return None
    size = 1
    while position + size < len(trials) and trials[position + size].screen == position:
        size += 1
    return size


def check_position(position: int, total: int) -> None:
    if not 0 <= position < total:
        raise SurveyError(
            404, f"No trial at position {position}; positions run from 0 to {total - 1}."
        )
