"""Trials and answers of a survey: serving a participant's trials, storing their answers
(and matching screens) once, their outcome, and the coverage of the items.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from percalign.scoring.attention import attention_failures
from percalign.store.coverage import coverage
from percalign.store.db import ParticipantRow, ResponseRow, now
from percalign.store.participants import ABANDONED, Participants
from percalign.store.survey_base import (
    PlanTrial,
    SurveyError,
    check_position,
    screen_size,
    step_starts,
)

__all__ = ["Answer", "Answers", "TrialView"]


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


class _Answered(Exception):
    """Raised inside the answer transaction for a trial that is already answered."""


class Answers(Participants):
    """What participants are shown and what they answer."""

    def trial(self, pid: str, position: int, now_ms: int) -> TrialView:
        """Trial ``position`` (answered, or the next one) as served at ``now_ms``."""
        trials = self._trials(pid)
        total = len(trials)
        check_position(position, total)
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
            self._steps[slot] = {p: i for i, p in enumerate(step_starts(trials))}
        starts = self._steps[slot]
        step = starts.get(position, 0)
        shown = self.signer.shown(pid, position, now_ms)
        query, candidates = self._images(pid, position)
        size = screen_size(trials, position)
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
        check_position(position, len(trials))
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
        check_position(position, len(trials))
        size = screen_size(trials, position)
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

    def _outcome(self, s: Connection, trials: list[PlanTrial], pid: str) -> str:
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

    def coverage(self) -> dict[str, Any]:
        """Items short of R judgments from completed participants, and what that takes
        (see :func:`percalign.store.coverage.coverage`)."""
        plan = self._plan()
        slots = {
            k: [t.item for t in v if not t.is_catch]
            for k, v in plan.slots.items()
            if k < plan.base_slots  # a participant's own slot is not the plan's promise
        }
        return coverage(self.engine, slots, plan.judgments_per_item)


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
