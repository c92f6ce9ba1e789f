"""Participants and their answers in the study database: the survey's only SQL.

:class:`SurveyStore` is one object over the parts, each in its own module by what it stores:
the shared ground (:mod:`~percalign.store.survey_base`: transactions, study state, the plan,
the key), participants (:mod:`~percalign.store.participants`), trials and answers
(:mod:`~percalign.store.answers`) and comments (:mod:`~percalign.store.comments`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from percalign.store.answers import Answer, Answers, TrialView
from percalign.store.comments import Comments
from percalign.store.db import CommentRow, ParticipantRow, ResponseRow
from percalign.store.looks import Looks
from percalign.store.participants import ABANDONED
from percalign.store.survey_base import SurveyError

__all__ = ["ABANDONED", "Answer", "SurveyError", "SurveyStore", "TrialView"]


class SurveyStore(Answers, Comments, Looks):
    """Sessions, trials, answers and comments of one study database: the parts in one
    object (see :class:`~percalign.store.survey_base.SurveyBase` for sharing it between
    threads and worker processes)."""

    def summary(self) -> dict[str, Any]:
        """Participants by status, answers in all and per item, comments, open or closed,
        visitors screened out, and the coverage."""
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
            "sequential": self.sequential_state(),
        }
