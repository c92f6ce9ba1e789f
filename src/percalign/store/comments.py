"""Participants' comments ("report a problem"): stored once per key, bounded per
participant and per study.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from percalign.store.db import CommentRow, now
from percalign.store.participants import Participants
from percalign.store.survey_base import SurveyError

__all__ = ["MAX_COMMENTS", "MAX_STUDY_COMMENTS", "Comments"]

#: Comments one participant may send.
MAX_COMMENTS = 20
#: Comments the whole study keeps (a bound on what a flood of sessions can store).
MAX_STUDY_COMMENTS = 5000


class Comments(Participants):
    """Free-text messages from participants."""

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
