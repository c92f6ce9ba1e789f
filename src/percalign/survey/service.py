"""What the survey's routes share: the study being served, and the dependencies they take.

:class:`Service` holds one served study (its store, settings, completion codes, rate limit
and device requirements) and the replies built from it; ``create_app`` keeps one in
``app.state.service``. The routers (:mod:`~percalign.survey.participants`,
:mod:`~percalign.survey.admin`) reach it, and check tokens, through FastAPI dependencies.
"""

import base64
import functools
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from percalign.store.db import connect
from percalign.store.sessions import Answer, SurveyError, SurveyStore, TrialView
from percalign.store.study import study_url
from percalign.survey.design import Trial, allocated_slot
from percalign.survey.limits import RateLimit, ServeSettings
from percalign.survey.pages import page_version
from percalign.survey.requirements import Requirements
from percalign.survey.schemas import PARTICIPANT_PATTERN, AnswerReply, Device, ErrorBody, TrialReply

log = logging.getLogger("percalign.survey")

__all__ = [
    "Admin",
    "Participant",
    "Served",
    "Service",
    "StalePage",
    "error_reply",
    "errors",
    "json_reply",
    "next_step",
]


class StalePage(SurveyError):
    """An answer from a page of another version than the service's (409, ``reload``)."""

    def __init__(self) -> None:
        super().__init__(
            409,
            "This study's page was updated since you opened it, so this answer was not "
            "stored; reload the page to continue where you were.",
        )


def next_step(platform: str) -> str:
    """What a participant who cannot take part should do now, on their platform."""
    return {
        "prolific": "Please return the study on Prolific (its 'Return submission' button), "
        "so that your place goes to someone else; nothing is held against you.",
        "mturk": "Please return the HIT on MTurk (its 'Return' button); do not submit it.",
    }.get(platform, "Please close this page; if you think this is a mistake, tell the researcher.")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (503 for all)."""
    return {code: {"model": ErrorBody} for code in (*codes, 503)}


def json_reply(reply: BaseModel) -> Response:
    """A reply serialized by pydantic at once: the hot paths skip FastAPI's second validation
    of what they return (one more thread hop for a sync route)."""
    return Response(reply.model_dump_json(), media_type="application/json")


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Service:
    """One study as served: its store and settings, and the replies made from them.

    Args:
        study: a folder made by ``percalign survey build``.
        admin_token: secret for the admin API.
        completion_codes: completion codes by outcome (``completed``, ``failed``,
            ``no_consent``).
        settings: how the study is served.
        clock: the server's clock in seconds.
    """

    def __init__(
        self,
        study: Path,
        admin_token: str,
        completion_codes: dict[str, str] | None = None,
        settings: ServeSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.study = Path(study)
        self.admin_token = admin_token
        self.settings = settings or ServeSettings()
        self.clock = clock
        self.store = SurveyStore(
            connect(study_url(self.study)),
            abandon_after_s=self.settings.abandon_after_min * 60,
            clock=clock,
            unanswered_after_s=self.settings.unanswered_after_min * 60,
        )
        self.codes = completion_codes or {}
        self.starts = RateLimit(self.settings)
        self.needs = Requirements.from_mapping(self.store.meta("requirements"))
        # per process: stimuli never change, and the page's texts are read once
        self.data_url = functools.lru_cache(maxsize=4096)(self._data_url)
        self.page_state = functools.cache(self._page_state)

    def code(self, outcome: str | None) -> str | None:
        """The completion code of a finished participant's outcome (never another's)."""
        key = {"completed": "completed", "failed_attention": "failed"}.get(outcome or "")
        return self.codes.get(key) if key else None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def image_url(self, pid: str, position: int, index: int) -> str:
        key = self.store.signer.image_key(pid, position, index)
        return f"/images/{pid}/{position}/{index}/{key}.png"

    def _data_url(self, sha: str) -> str | None:
        """A stimulus as a data: URL, or None when it is too large to embed."""
        path = self.store.stimulus_path(sha)
        data = (self.study / path).read_bytes() if path is not None else b""
        if not data or len(data) > self.settings.embed_kb * 1024:
            return None
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")

    def trial_reply(self, pid: str, t: TrialView) -> TrialReply:
        """The reply that serves trial ``t`` to participant ``pid``."""
        tops = t.iris if t.iris is not None else [t.query or ""]
        shas = (*tops, *t.candidates)
        embedded = [url for sha in shas if (url := self.data_url(sha)) is not None]
        iris = [self.image_url(pid, t.position + i, 0) for i in range(len(tops))]
        return TrialReply(
            position=t.position,
            total=t.total,
            kind="choice" if t.iris is None else "screen",
            query=iris[0] if t.iris is None else None,
            candidates=[self.image_url(pid, t.position, i + 1) for i in range(len(t.candidates))],
            iris=None if t.iris is None else iris,
            shown=t.shown,
            step=t.step,
            steps=t.steps,
            embedded=embedded if len(embedded) == len(shas) else None,
        )

    def replied(self, pid: str, a: Answer) -> AnswerReply:
        """The reply to stored answers: the next trial, or the outcome's code."""
        reply = AnswerReply(
            position=a.position, next=a.next_position, done=a.done, duplicate=a.duplicate
        )
        if a.done:
            reply.outcome = a.outcome
            reply.completion_code = self.code(a.outcome)
            if a.outcome == "completed" and not a.duplicate:
                covered = self.settings.close_when_covered
                if covered and not self.store.coverage()["items_short"]:
                    self.store.set_meta("closed", True)
                self._look()
        elif a.next_position is not None:
            reply.trial = self.trial_reply(
                pid, self.store.serve(pid, a.next_position, self.now_ms())
            )
        return reply

    def _look(self) -> None:
        """A sequential survey's look, if one is due (it decides, and may close the study).
        The answer is stored whatever happens here: a look that fails is logged, and taken
        again at the next completion."""
        try:
            self.store.take_look()
        except Exception:
            log.exception("A look at the answers failed; it is tried again at the next one")

    def _page_state(self) -> tuple[dict[str, str], list[dict[str, Any]], str]:
        """The texts and practice trials the page shows, and the page's version: read once
        per process, so a change of texts takes a restart, and pages from before it are
        refused (see :func:`~percalign.survey.pages.page_version`)."""
        texts = self.store.meta("texts", {})
        practice = [
            {"targets": [f"/stimuli/{c}.png" for c in d["targets"]]}
            if "targets" in d  # a practice matching screen: copies of the targets to match
            else {
                "query": f"/stimuli/{d['query']}.png",
                "candidates": [f"/stimuli/{c}.png" for c in d["candidates"]],
                "correct": d["correct"],
            }
            for d in self.store.meta("practice", [])
        ]
        return texts, practice, page_version(texts, practice, self.store.min_display_ms)

    def check_version(self, version: str | None) -> None:
        """Refuse an answer from a page of another version (:class:`StalePage`)."""
        if version is not None and version != self.page_state()[2]:
            raise StalePage()

    def new_slot(self) -> list[Trial] | None:
        """A new participant's own trials in a sequential survey after its first look:
        answers go where undecided questions need them (:func:`allocated_slot`); None (the
        plan's next slot) before the first look, for a fixed plan, or matching screens."""
        needs = self.store.needs()
        if not needs:  # a fixed plan (no query), or no look yet
            return None
        settings = self.store.meta("plan") or {}
        if settings.get("design") == "clustering":
            return None
        items = self.store.items()
        regular = [(key, condition) for key, condition, catch in items if not catch]
        columns = list(needs)
        levels = [tuple(str(condition.get(c)) for c in columns) for _, condition in regular]
        combos = sorted(set(levels))
        need = np.array(
            [sum(needs[c].get(combo[j], 0.0) for j, c in enumerate(columns)) for combo in combos]
        )
        judged = self.store.judgments()
        counts = np.array([judged.get(key, 0) for key, _ in regular])
        return allocated_slot(
            [key for key, _ in regular],
            np.array([combos.index(v) for v in levels]),
            need,
            counts,
            [key for key, _, catch in items if catch],
            settings,
            seed=int(settings.get("seed", 0)) + int(counts.sum()),
        )

    def screen_out(self, device: Device | None, request: Request) -> dict[str, str]:
        """What the device lacks of the study's requirements, counted when anything."""
        if not self.needs.any:
            return {}
        d = device or Device(width=0, height=0, pointer="none")
        agent = request.headers.get("user-agent", "")
        lacks = self.needs.unmet(d.width, d.height, d.pointer, agent)
        if lacks:
            self.store.count_screen_out(sorted(lacks))
        return lacks


def service(request: Request) -> Service:
    """The study the app serves (a dependency)."""
    return request.app.state.service  # type: ignore[no-any-return]


Served = Annotated[Service, Depends(service)]
_participant_bearer = HTTPBearer(auto_error=False, scheme_name="participant")
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="admin")
Credentials = HTTPAuthorizationCredentials | None


# async: a check without I/O needs no hop to the thread pool
async def admin(
    served: Served, credentials: Annotated[Credentials, Depends(_admin_bearer)]
) -> None:
    """Refuse (401) a request without the admin token."""
    given = credentials.credentials if credentials else ""
    if not given or not hmac.compare_digest(given.encode(), served.admin_token.encode()):
        raise SurveyError(401, "Admin token missing or wrong; send 'Authorization: Bearer TOKEN'.")


async def participant(
    served: Served,
    pid: Annotated[str, PathParam(pattern=PARTICIPANT_PATTERN)],
    credentials: Annotated[Credentials, Depends(_participant_bearer)],
) -> str:
    """The participant of the path, once the request's session token is theirs."""
    served.store.check_token(pid, credentials.credentials if credentials else None)
    return pid


Admin = Annotated[None, Depends(admin)]
Participant = Annotated[str, Depends(participant)]
