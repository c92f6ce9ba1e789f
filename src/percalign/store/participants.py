"""Participants of a survey: sessions started and resumed, slots, statuses, visitors
screened out; the admin's list of participants.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from percalign.store.coverage import participant_table
from percalign.store.db import MetaRow, ParticipantRow, ResponseRow, SlotTrialRow, now, slot_rows
from percalign.store.survey_base import PlanTrial, SurveyBase, SurveyError

__all__ = ["ABANDONED", "HOLDS_SLOT", "Participants"]

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


class Participants(SurveyBase):
    """Who takes part: starting and resuming sessions on the plan's slots."""

    def start(
        self,
        platform: str,
        pid: str,
        study: str | None = None,
        session_id: str | None = None,
        screen: dict[str, Any] | None = None,
        make_slot: Callable[[], list[Any] | None] | None = None,
    ) -> tuple[ParticipantRow, bool]:
        """The participant for (platform, pid): resumed if known, else new on the least-used
        slot of the plan, or on trials of their own when ``make_slot`` gives some (a
        sequential survey's allocation: a list of
        :class:`~percalign.survey.plan.Trial`). Returns (participant, resumed).

        A known participant resumes only with the platform session id it started with (None
        included), so knowing someone's platform id is not enough to take over their session.
        """
        found = self._find(platform, pid)
        if found is None:
            if self.meta("closed", False):
                raise SurveyError(403, "This study is closed; no new sessions start.")
            self.stopping()  # read outside the transaction below
            try:
                trials = make_slot() if make_slot is not None else None
                return self._create(platform, pid, study, session_id, screen, trials), False
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
        trials: list[Any] | None = None,
    ) -> ParticipantRow:
        plan = self._plan()  # read before the transaction: it must not wait for a second
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
            if self.budget_full(s):
                raise SurveyError(
                    403,
                    "This study has as many participants as it needs for now; no new "
                    "sessions start until a started one is given up.",
                )
            used = dict(
                s.execute(
                    select(ParticipantRow.slot, func.count())
                    .where(ParticipantRow.status.in_(HOLDS_SLOT))
                    .group_by(ParticipantRow.slot)
                ).all()
            )
            if trials:
                slot = max(
                    plan.base_slots, 1 + int(s.scalar(select(func.max(SlotTrialRow.slot))) or 0)
                )
                s.add_all(slot_rows(slot, trials))
            else:
                base = [k for k in plan.slots if k < plan.base_slots]
                slot = min(base, key=lambda k: (used.get(k, 0), k))
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

    def stopping(self) -> Any:
        """A sequential survey's stopping rule (:class:`~percalign.store.looks.Looks`);
        None here."""
        return None

    def budget_full(self, s: Any) -> bool:
        """Whether new sessions must wait for the budget (never, without a stopping rule)."""
        return False

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

    def _trials(self, pid: str) -> list[PlanTrial]:
        return self._slot_trials(self._slot(pid))

    def status(self, pid: str) -> str:
        """'active', 'completed', 'failed_attention' or 'abandoned'."""
        return self.participant(pid).status

    def progress(self, pid: str) -> tuple[int, int]:
        """(answered, total) for a participant."""
        total = len(self._trials(pid))
        with self.engine.connect() as c:
            return self._answered(c, pid), total

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

    def participants(self) -> list[dict[str, Any]]:
        """Every participant's status, slot and progress, newest first."""
        with self._session() as s:
            totals = dict(
                s.execute(select(SlotTrialRow.slot, func.count()).group_by(SlotTrialRow.slot)).all()
            )
        return participant_table(self.engine, totals, self.silent_since())
