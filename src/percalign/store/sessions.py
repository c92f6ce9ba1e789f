"""Participants and their answers in the study database: the survey's only SQL."""

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
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from percalign.errors import PercalignError
from percalign.scoring.attention import AttentionRules, attention_failures
from percalign.store.coverage import coverage, participant_table
from percalign.store.db import (
    CommentRow,
    ItemRow,
    MetaRow,
    ParticipantRow,
    ResponseRow,
    SlotTrialRow,
    StimulusRow,
    now,
)
from percalign.store.signing import Signer

__all__ = ["ABANDONED", "Answer", "SurveyError", "SurveyStore", "TrialView"]

#: Comments one participant may send.
MAX_COMMENTS = 20
#: Comments the whole study keeps (a bound on what a flood of sessions can store).
MAX_STUDY_COMMENTS = 5000


class SurveyError(PercalignError):
    """A request the survey refuses; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TrialView:
    """A trial as served: one query and its candidates, or a matching screen (``iris``, each
    to be assigned to one of the candidates, which are then the screen's targets)."""

    position: int
    total: int
    query: str | None  # None on a matching screen
    candidates: list[str]  # stimulus ids in display order
    shown: str  # the server's signed record of when it served the trial (see ``shown``)
    iris: list[str] | None = None  # a matching screen's IRIs, in display order
    step: int = 0  # this trial (or screen) among the participant's, from 0
    steps: int = 0  # how many trials (a screen counts as one) the participant has


@dataclass(frozen=True)
class Answer:
    position: int
    next_position: int | None
    done: bool
    duplicate: bool
    outcome: str | None = None  # when done: "completed" or "failed_attention"


@dataclass(frozen=True)
class _Trial:
    item: str
    order: tuple[int, ...]  # candidate index shown at each display position
    is_catch: bool
    screen: int | None = None  # on a matching screen: the position of its first trial


@dataclass(frozen=True)
class _Plan:
    """The trials of every slot and the items: written once by ``survey build``."""

    slots: dict[int, list[_Trial]]
    items: dict[str, tuple[str, list[str]]]  # id -> (query, candidates)
    attention: AttentionRules
    min_display_ms: int
    judgments_per_item: int


class _Answered(Exception):
    """Raised inside the answer transaction for a trial that is already answered."""


class SurveyStore:
    """Sessions, trials and answers of one study database.

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
        self._plan_cache: _Plan | None = None
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

    def _plan(self) -> _Plan:
        if self._plan_cache is None:
            slots: dict[int, list[_Trial]] = {}
            with self._session() as s:
                rows = s.scalars(
                    select(SlotTrialRow).order_by(SlotTrialRow.slot, SlotTrialRow.position)
                )
                for t in rows:
                    slots.setdefault(t.slot, []).append(
                        _Trial(t.item, tuple(t.display_order), bool(t.is_catch), t.screen)
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
            self._plan_cache = _Plan(
                slots,
                items,
                attention,
                int((settings.value if settings else {}).get("min_display_ms", 0)),
                int((settings.value if settings else {}).get("judgments_per_item", 1)),
            )
        return self._plan_cache

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
        slot. Returns (participant, resumed).

        A known participant resumes only with the platform session id it started with (None
        included), so knowing someone's platform id is not enough to take over their session.
        """
        found = self._find(platform, pid)
        if found is None:
            if self.meta("closed", False):
                raise SurveyError(403, "This study is closed; no new sessions start.")
            try:
                return self._create(platform, pid, study, session_id, screen), False
            except IntegrityError:  # the same person started twice at once: resume the first
                found = self._find(platform, pid)
                if found is None:
                    raise
        if found.platform_session != session_id:
            raise SurveyError(
                409,
                f"This {platform} id already took part in another session of this study; "
                "each person takes part once.",
            )
        if found.status in ("active", ABANDONED):  # a session back from silence takes its
            with self._write() as s:  # own trials again (the plan never changes)
                s.execute(
                    update(ParticipantRow)
                    .where(ParticipantRow.id == found.id)
                    .values(status=_active_again(), last_active_at=self._now())
                )
            found.status = "active"
        return found, True

    def _find(self, platform: str, pid: str) -> ParticipantRow | None:
        with self._session() as s:
            return s.scalar(
                select(ParticipantRow).where(
                    ParticipantRow.platform == platform, ParticipantRow.platform_pid == pid
                )
            )

    def _create(
        self,
        platform: str,
        pid: str,
        study: str | None,
        session_id: str | None,
        screen: dict[str, Any] | None,
    ) -> ParticipantRow:
        slots = self._plan().slots  # read before the transaction: it must not wait for a second
        with self._write() as s:  # pooled connection while it holds the lock
            # serialize slot choice between workers (a row lock on PostgreSQL)
            s.execute(select(MetaRow.key).where(MetaRow.key == "plan").with_for_update())
            # silent sessions give up their slots, and sooner those that never answered;
            # completed and active ones hold theirs
            never = (
                ~select(ResponseRow.participant)
                .where(ResponseRow.participant == ParticipantRow.id)
                .exists()
            )
            unanswered = datetime.fromtimestamp(
                self.clock() - self.unanswered_after_s, timezone.utc
            )
            s.execute(
                update(ParticipantRow)
                .where(
                    ParticipantRow.status == "active",
                    or_(
                        _last_active() < self.silent_since(),
                        and_(_last_active() < unanswered, never),
                    ),
                )
                .values(status=ABANDONED)
            )
            used = dict(
                s.execute(
                    select(ParticipantRow.slot, func.count())
                    .where(ParticipantRow.status.in_(HOLDS_SLOT))
                    .group_by(ParticipantRow.slot)
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
                last_active_at=self._now(),
                screen=screen,
            )
            s.add(row)
        return row

    def participant(self, pid: str) -> ParticipantRow:
        with self._session() as s:
            row = s.get(ParticipantRow, pid)
        if row is None:
            raise SurveyError(404, "Unknown participant; start again from your study link.")
        return row

    def _slot(self, pid: str) -> int:
        if pid not in self._slots:
            row = self.participant(pid)
            self._slots[pid] = (row.slot, row.platform)
        return self._slots[pid][0]

    def is_bot(self, pid: str) -> bool:
        """Whether ``pid`` is a simulated participant (marked so by the server)."""
        self._slot(pid)
        return self._slots[pid][1] == "bot"

    def _trials(self, pid: str) -> list[_Trial]:
        return self._plan().slots[self._slot(pid)]

    @staticmethod
    def _answered(s: Session | Connection, pid: str) -> int:
        """Answers are stored strictly in order, so they are exactly positions 0..n-1."""
        n = s.scalar(_COUNT_ANSWERS, {"pid": pid})
        return int(n or 0)

    def status(self, pid: str) -> str:
        """'active', 'completed', 'failed_attention' or 'abandoned'."""
        return self.participant(pid).status

    def progress(self, pid: str) -> tuple[int, int]:
        """(answered, total) for a participant."""
        total = len(self._trials(pid))
        with self.engine.connect() as c:
            return self._answered(c, pid), total

    def trial(self, pid: str, position: int, now_ms: int) -> TrialView:
        """Trial ``position`` (answered, or the next one) as served at ``now_ms``."""
        trials = self._trials(pid)
        total = len(trials)
        _check_position(position, total)
        first = trials[position].screen
        if first is not None and first != position:
            raise SurveyError(
                409,
                f"Trial {position + 1} is on the matching screen that starts at trial "
                f"{first + 1}; get that one.",
            )
        answered, _ = self.progress(pid)
        if position > answered:
            raise SurveyError(
                409,
                f"Trial {position + 1} comes after trial {answered + 1}, which is not answered "
                "yet.",
            )
        return self.serve(pid, position, now_ms)

    def serve(self, pid: str, position: int, now_ms: int) -> TrialView:
        """Trial ``position`` as served at ``now_ms``, with no database read: for the caller
        that knows it is the participant's next trial (the reply to the answer before it).

        A matching screen is served whole from its first trial.
        """
        trials = self._trials(pid)
        slot = self._slot(pid)
        if slot not in self._steps:
            self._steps[slot] = {p: i for i, p in enumerate(_starts(trials))}
        starts = self._steps[slot]
        step = starts.get(position, 0)
        shown = self.signer.shown(pid, position, now_ms)
        query, candidates = self._images(pid, position)
        size = _screen_size(trials, position)
        if size is None:
            return TrialView(
                position, len(trials), query, candidates, shown, step=step, steps=len(starts)
            )
        iris = [self._images(pid, position + i)[0] for i in range(size)]
        return TrialView(
            position, len(trials), None, candidates, shown, iris, step=step, steps=len(starts)
        )

    def _images(self, pid: str, position: int) -> tuple[str, list[str]]:
        t = self._trials(pid)[position]
        query, candidates = self._plan().items[t.item]
        return query, [candidates[i] for i in t.order]

    def trial_image(self, pid: str, position: int, index: int, key: str) -> str | None:
        """The stimulus path behind a trial image URL, or None for a URL this server never
        gave out (checked before anything is read)."""
        if not hmac.compare_digest(key, self.signer.image_key(pid, position, index)):
            return None
        trials = self._trials(pid)
        if not (position < len(trials) and index <= len(trials[position].order)):
            return None
        query, candidates = self._images(pid, position)
        return self.stimulus_path([query, *candidates][index])

    def answer(
        self,
        pid: str,
        position: int,
        choice: int,
        rt_ms: float | None,
        client_time: float | None,
        *,
        shown: str | None,
        now_ms: int,
        version: str | None = None,
    ) -> Answer:
        """Store an answer once. Resending an acknowledged answer changes nothing; sending
        another choice for it is refused (409).

        A new answer must carry the ``shown`` note of its trial, and arrive at least the
        plan's ``min_display_ms`` after the server served that trial (by the server's clock;
        simulated participants are exempt from the wait), so no press can answer a trial
        that was not on screen. That time is stored as ``server_rt_ms`` (not for simulated
        participants, which take no time: their ``rt_ms`` is what they simulate).
        """
        trials = self._trials(pid)
        _check_position(position, len(trials))
        if trials[position].screen is not None:
            raise SurveyError(
                409,
                f"Trial {position + 1} is on a matching screen: send the screen's assignments "
                "together (POST .../screens).",
            )
        return self._store(pid, position, [choice], rt_ms, client_time, shown, now_ms, version)

    def answer_screen(
        self,
        pid: str,
        position: int,
        assignments: list[int],
        rt_ms: float | None,
        client_time: float | None,
        *,
        shown: str | None,
        now_ms: int,
        version: str | None = None,
    ) -> Answer:
        """Store every assignment of the matching screen that starts at ``position`` at once
        (one answer per IRI, in the screen's display order; each the display position of the
        target it was assigned to), with the rules of :meth:`answer`.
        """
        trials = self._trials(pid)
        _check_position(position, len(trials))
        size = _screen_size(trials, position)
        if size is None:
            raise SurveyError(
                409, f"Trial {position + 1} is not the start of a matching screen; answer it."
            )
        if len(assignments) != size:
            raise SurveyError(
                409,
                f"The matching screen at trial {position + 1} has {size} images to assign; "
                f"got {len(assignments)} assignments.",
            )
        return self._store(pid, position, assignments, rt_ms, client_time, shown, now_ms, version)

    def _store(
        self,
        pid: str,
        position: int,
        choices: list[int],
        rt_ms: float | None,
        client_time: float | None,
        shown: str | None,
        now_ms: int,
        version: str | None = None,
    ) -> Answer:
        """Store the answers to the trials from ``position`` on, all or none; ``version`` is
        the page version they were given under (None: not through the page)."""
        trials = self._trials(pid)
        total = len(trials)
        width = len(trials[position].order)
        for choice in choices:  # valid JSON, but not for this trial: a conflict
            if not 0 <= choice < width:
                raise SurveyError(
                    409,
                    f"'choice' must be a display position from 0 to {width - 1}; got {choice}.",
                )
        bot = self.is_bot(pid)
        end = position + len(choices)
        done = end == total
        outcome = None
        try:  # prebuilt Core statements on the tables: this is the hot path
            with self._writer, self.engine.begin() as c:
                answered = self._answered(c, pid)
                if position < answered:  # a resend: answered below, outside the transaction
                    raise _Answered
                if position > answered:
                    raise SurveyError(
                        409,
                        f"Answer trial {answered + 1} first (got an answer for trial "
                        f"{position + 1}).",
                    )
                elapsed = self._elapsed(pid, position, shown, now_ms, bot)
                rows = [
                    {
                        "participant": pid,
                        "position": position + i,
                        "item": trials[position + i].item,
                        "choice": choice,
                        "correct": trials[position + i].order[choice] == 0,
                        "rt_ms": rt_ms,
                        "client_time": client_time,
                        # simulated participants do not take time: only their rt_ms says
                        "server_rt_ms": None if bot else float(elapsed),
                        "server_time": now(),
                        "page_version": version,
                    }
                    for i, choice in enumerate(choices)
                ]
                c.execute(_INSERT_ANSWER, rows[0] if len(rows) == 1 else rows)
                if done:
                    outcome = self._outcome(c, trials, pid)
                    touch = {"p_id": pid, "p_at": self._now(), "p_done": now(), "p_status": outcome}
                    c.execute(_FINISH, touch)
                else:
                    c.execute(_TOUCH, {"p_id": pid, "p_at": self._now()})
        except (_Answered, IntegrityError):  # stored before (or just now, by a concurrent copy)
            return self._repeat(pid, position, choices, total)
        return Answer(position, None if done else end, done, False, outcome)

    def _elapsed(self, pid: str, position: int, shown: str | None, now_ms: int, bot: bool) -> int:
        """Milliseconds since trial ``position`` was served, by its ``shown`` note; 409 for a
        missing or forged note, or an answer before ``min_display_ms`` (bots are exempt)."""
        served = self.signer.shown_ms(pid, position, shown)
        if served is None:
            raise SurveyError(
                409,
                f"The answer to trial {position + 1} must carry the 'shown' value of that trial "
                "as served; get the trial, then answer it.",
            )
        elapsed = now_ms - served
        if elapsed < self.min_display_ms and not bot:
            raise SurveyError(
                409,
                f"Trial {position + 1} was answered {max(elapsed, 0)} ms after it was served; "
                f"a choice counts after {self.min_display_ms} ms on screen.",
            )
        return elapsed

    def _repeat(self, pid: str, position: int, choices: list[int], total: int) -> Answer:
        """The reply to answers for trials that are already answered."""
        end = position + len(choices)
        with self.engine.connect() as c:
            stored = dict(
                c.execute(
                    select(ResponseRow.position, ResponseRow.choice).where(
                        ResponseRow.participant == pid,
                        ResponseRow.position >= position,
                        ResponseRow.position < end,
                    )
                ).all()
            )
            answered = self._answered(c, pid)
        if len(stored) < len(choices):  # cannot happen: answers are stored all or none
            raise SurveyError(409, f"Trial {position + 1} is not answered; send it again.")
        if [stored[p] for p in range(position, end)] != choices:
            if len(choices) == 1:
                raise SurveyError(
                    409,
                    f"Trial {position + 1} is already answered (with option "
                    f"{stored[position] + 1}); an acknowledged answer cannot change.",
                )
            raise SurveyError(
                409,
                f"The matching screen at trial {position + 1} is already submitted with other "
                "assignments; acknowledged answers cannot change.",
            )
        finished = answered >= total
        return Answer(
            position,
            None if finished else answered,
            finished,
            duplicate=True,
            outcome=self.status(pid) if finished else None,
        )

    def _outcome(self, s: Connection, trials: list[_Trial], pid: str) -> str:
        """'failed_attention' when the answers break one of the study's attention rules
        (catch accuracy, side bias: :mod:`percalign.scoring.attention`)."""
        rows = s.execute(
            select(ResponseRow.position, ResponseRow.choice, ResponseRow.correct)
            .where(ResponseRow.participant == pid)
            .order_by(ResponseRow.position)
        ).all()
        failed = attention_failures(
            [int(r.choice) for r in rows],
            [bool(r.correct) for r in rows],
            [trials[r.position].is_catch for r in rows],
            self._plan().attention,
        )
        return "failed_attention" if failed else "completed"

    # -- screened out -----------------------------------------------------------
    def count_screen_out(self, kinds: list[str]) -> None:
        """Count a visitor whose device lacks what the study requires, by what it lacks
        (meta ``screened_out``: {kind: visitors}); nothing else about them is kept."""
        with self._write() as s:
            row = s.execute(
                select(MetaRow).where(MetaRow.key == "screened_out").with_for_update()
            ).scalar_one_or_none()
            counts = dict(row.value) if row is not None else {}
            for kind in kinds:
                counts[kind] = int(counts.get(kind, 0)) + 1
            s.merge(MetaRow(key="screened_out", value=counts))

    # -- comments ----------------------------------------------------------------
    def comment(self, pid: str, key: str, position: int | None, text: str) -> bool:
        """Store a participant's comment once under the client's ``key``.

        Returns True when stored now, False for a resend of the same comment.
        """
        self._slot(pid)  # 404 for an unknown participant
        with self._session() as s:
            stored = s.get(CommentRow, (pid, key))
            count = s.scalar(
                select(func.count()).select_from(CommentRow).where(CommentRow.participant == pid)
            )
            study = s.scalar(select(func.count()).select_from(CommentRow))
        if stored is None and (count or 0) >= MAX_COMMENTS:
            raise SurveyError(409, f"At most {MAX_COMMENTS} comments per participant.")
        if stored is None and (study or 0) >= MAX_STUDY_COMMENTS:
            raise SurveyError(
                409, "The study has all the comments it can take; tell the researcher instead."
            )
        if stored is None:
            try:
                with self._write() as s:
                    s.add(
                        CommentRow(
                            participant=pid,
                            key=key,
                            position=position,
                            text=text,
                            created_at=now(),
                        )
                    )
                return True
            except IntegrityError:  # a concurrent resend was stored first
                with self._session() as s:
                    stored = s.get(CommentRow, (pid, key))
        if stored is None or stored.text != text:
            raise SurveyError(409, f"Comment {key!r} was already sent with another text.")
        return False

    def comments(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest comments, newest first."""
        with self._session() as s:
            rows = s.scalars(select(CommentRow).order_by(CommentRow.created_at.desc()).limit(limit))
            return [
                {
                    "participant": c.participant,
                    "position": c.position,
                    "text": c.text,
                    "time": c.created_at.isoformat(),
                }
                for c in rows
            ]

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
            comments = s.scalar(select(func.count()).select_from(CommentRow)) or 0
        return {
            "participants": statuses,
            "started": sum(statuses.values()),
            "completed": statuses.get("completed", 0),
            "answers": int(answers),
            "answers_per_item": per_item,
            "comments": int(comments),
            "closed": bool(self.meta("closed", False)),
            "screened_out": dict(self.meta("screened_out", {})),
            "coverage": self.coverage(),
        }

    def coverage(self) -> dict[str, Any]:
        """Items short of R judgments from completed participants, and what that takes
        (see :func:`percalign.store.coverage.coverage`)."""
        plan = self._plan()
        slots = {k: [t.item for t in v if not t.is_catch] for k, v in plan.slots.items()}
        return coverage(self.engine, slots, plan.judgments_per_item)

    def participants(self) -> list[dict[str, Any]]:
        """Every participant's status, slot and progress, newest first."""
        totals = {k: len(v) for k, v in self._plan().slots.items()}
        return participant_table(self.engine, totals, self.silent_since())


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


#: A participant's status once silent for ``abandon_after_s``: the slot goes to others, the
#: answers stay (and are exported with this status).
ABANDONED = "abandoned"
#: The statuses whose sessions keep their slot taken.
HOLDS_SLOT = ("active", "completed")


def _last_active() -> Any:
    return func.coalesce(ParticipantRow.last_active_at, ParticipantRow.created_at)


def _active_again() -> Any:
    """The status of a session that answers or comes back: abandoned ones are active again."""
    return case((ParticipantRow.status == ABANDONED, "active"), else_=ParticipantRow.status)


_COUNT_ANSWERS = (
    select(func.count()).select_from(ResponseRow).where(ResponseRow.participant == bindparam("pid"))
)
# the answer path's statements, built once on the tables (no ORM, a constant cache key)
_RESPONSES = cast(Table, ResponseRow.__table__)
_PEOPLE = cast(Table, ParticipantRow.__table__)
_INSERT_ANSWER = insert(_RESPONSES)
_TOUCH = (  # an answer that is not the last: active (again), and when
    update(_PEOPLE)
    .where(_PEOPLE.c.id == bindparam("p_id"))
    .values(
        status=case((_PEOPLE.c.status == ABANDONED, "active"), else_=_PEOPLE.c.status),
        last_active_at=bindparam("p_at"),
    )
)
_FINISH = (  # the last answer: the outcome, and when
    update(_PEOPLE)
    .where(_PEOPLE.c.id == bindparam("p_id"))
    .values(
        status=bindparam("p_status"),
        last_active_at=bindparam("p_at"),
        completed_at=bindparam("p_done"),
    )
)


def _starts(trials: list[_Trial]) -> list[int]:
    """The positions where a trial (or a matching screen) begins: one per step."""
    return [p for p, t in enumerate(trials) if t.screen is None or t.screen == p]


def _screen_size(trials: list[_Trial], position: int) -> int | None:
    """How many trials the matching screen starting at ``position`` has (None: not one)."""
    if trials[position].screen != position:
        return None
    size = 1
    while position + size < len(trials) and trials[position + size].screen == position:
        size += 1
    return size


def _check_position(position: int, total: int) -> None:
    if not 0 <= position < total:
        raise SurveyError(
            404, f"No trial at position {position}; positions run from 0 to {total - 1}."
        )
