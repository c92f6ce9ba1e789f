"""The survey web service: participant pages and API, admin API. No torch, no models.

Participants arrive with platform parameters (Prolific, MTurk or a plain link), answer trials
one at a time, and every answer is stored and acknowledged before the next trial shows.
Each participant's requests carry the session token that ``POST /api/sessions`` returned, so
no one can read or answer another participant's trials. A trial's images have URLs of
their own, and its answer counts only once the trial has been served ``min_display_ms`` (by
this server's clock). A completion code goes only to a participant who has answered every
trial, and only the code of their outcome. Every refusal is a 4xx with a JSON body
``{"error": ...}``; a database that cannot be reached is a 503 with ``Retry-After``.
"""

import base64
import csv
import functools
import hmac
import io
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from percalign.store.db import connect
from percalign.store.export import export_rows, spreadsheet_safe
from percalign.store.sessions import Answer, SurveyError, SurveyStore, TrialView
from percalign.store.study import study_url
from percalign.survey.guard import BodyLimit, SecurityHeaders
from percalign.survey.limits import RateLimit, ServeSettings
from percalign.survey.pages import (
    MTURK_HOSTS,
    admin_page,
    csp,
    page_version,
    participant_page,
)
from percalign.survey.requirements import Requirements

__all__ = ["MAX_BODY", "RETRY_AFTER_S", "create_app"]

_log = logging.getLogger("percalign.survey")

#: Largest request body accepted, in bytes (answers and comments are far smaller).
MAX_BODY = 16 * 1024
#: Seconds a client is asked to wait when the database cannot be reached.
RETRY_AFTER_S = 2
ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
PARTICIPANT_PATTERN = r"^[0-9a-f]{32}$"
KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MTURK_SUBMIT = r"^https://(www|workersandbox)\.mturk\.com/?$"
SHOWN_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
VERSION_PATTERN = r"^[0-9a-f]{16}$"

# The database is down, restarting, locked past the busy timeout, or the pool is exhausted.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)

PlatformId = Annotated[str | None, Query(pattern=ID_PATTERN)]


def _number(value: Any) -> Any:
    # pydantic would read true/false as 1/0 and "7" as 7; a JSON body must send numbers
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"a number is required, not {type(value).__name__}")
    return value


class _Body(BaseModel):
    """A request body: numbers must be JSON numbers (not booleans or strings)."""

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            numeric = {
                name
                for name, f in cls.model_fields.items()
                if f.annotation in (int, float, int | None, float | None)
            }
            for name in numeric & set(data):
                _number(data[name])
        return data


class Screen(_Body):
    w: int = Field(ge=0, le=100_000)
    h: int = Field(ge=0, le=100_000)


class Device(_Body):
    """What the page measured of the participant's device (checked against the study's
    requirements; the browser comes from the User-Agent header)."""

    width: int = Field(ge=0, le=100_000, description="the window's inner width, CSS px")
    height: int = Field(ge=0, le=100_000, description="the window's inner height, CSS px")
    pointer: str = Field(pattern="^(mouse|touch|none)$", description="the primary pointer")


class CheckRequest(_Body):
    platform: str = Field(pattern="^(prolific|mturk|link)$")
    device: Device


class CheckReply(BaseModel):
    ok: bool
    lacks: list[str] = Field(description="what the device lacks, in a few words each")
    next_step: str | None = Field(description="what to do instead, on the platform")


class SessionRequest(_Body):
    platform: str = Field(pattern="^(prolific|mturk|link|bot)$")
    pid: str = Field(pattern=ID_PATTERN)
    device: Device | None = Field(
        default=None, description="required when the study has device requirements"
    )
    study: str | None = Field(default=None, pattern=ID_PATTERN)
    session: str | None = Field(default=None, pattern=ID_PATTERN)
    screen: Screen | None = None
    bot_token: str | None = Field(
        default=None,
        max_length=128,
        description="required with platform 'bot' (given to `percalign survey bots`)",
    )


class SessionReply(BaseModel):
    participant: str
    token: str = Field(description="send as 'Authorization: Bearer TOKEN' on participant calls")
    resumed: bool
    next: int
    total: int
    min_display_ms: int = Field(description="a choice counts after this long on screen")
    done: bool = False
    outcome: str | None = None
    completion_code: str | None = Field(
        default=None, description="only for a finished participant, for their outcome"
    )


class TrialReply(BaseModel):
    position: int
    total: int
    kind: str = Field(
        default="choice",
        description="'choice': pick the candidate like the query; 'screen': a matching "
        "screen, assign each of 'iris' to one of the candidates (the screen's targets) and "
        "send them together to .../screens",
    )
    query: str | None = Field(
        description="URL of the image on top, for this trial only (none on a screen)"
    )
    candidates: list[str] = Field(description="URLs of the options, in display order")
    iris: list[str] | None = Field(
        default=None, description="a screen's images to assign, in display order"
    )
    shown: str = Field(description="send back with the answer to this trial")
    step: int = Field(description="this trial among the participant's, from 0 (a screen is one)")
    steps: int = Field(description="the participant's trials, a screen counting as one")
    embedded: list[str] | None = Field(
        default=None,
        description="the same images as data: URLs (the query or the screen's IRIs first, "
        "then the candidates), when they are small enough to travel in the reply; show "
        "these and fetch nothing",
    )


class AnswerRequest(_Body):
    position: int = Field(ge=0, le=100_000)
    choice: int = Field(ge=0, le=1_000)
    rt_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    client_time: float | None = Field(default=None, allow_inf_nan=False)
    shown: str | None = Field(
        default=None,
        pattern=SHOWN_PATTERN,
        description="the trial's 'shown' value; required for a new answer",
    )
    version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        description="the page's version (its data's 'version'); an answer from a page of "
        "another version is refused (409 with 'reload': true) and the page must be reloaded",
    )


class ScreenRequest(_Body):
    position: int = Field(ge=0, le=100_000, description="the screen's first trial")
    assignments: list[int] = Field(
        min_length=1,
        max_length=200,
        description="for each of the screen's IRIs (display order), the display position of "
        "the target it is assigned to",
    )
    rt_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    client_time: float | None = Field(default=None, allow_inf_nan=False)
    shown: str | None = Field(
        default=None,
        pattern=SHOWN_PATTERN,
        description="the screen's 'shown' value; required for a new submission",
    )
    version: str | None = Field(default=None, pattern=VERSION_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _assignments_are_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("assignments"), list):
            for value in data["assignments"]:
                _number(value)
        return data


class AnswerReply(BaseModel):
    position: int
    next: int | None
    done: bool
    duplicate: bool
    outcome: str | None = None
    completion_code: str | None = None
    trial: TrialReply | None = Field(
        default=None,
        description="trial 'next', served with this reply (no GET needed); none when done",
    )


class DeclineReply(BaseModel):
    completion_code: str | None = Field(
        description="the study's no-consent code (Prolific), if one is set up"
    )


class CommentRequest(_Body):
    key: str = Field(pattern=KEY_PATTERN, description="chosen by the client; a resend is a no-op")
    position: int | None = Field(default=None, ge=0, le=100_000)
    text: str = Field(min_length=1, max_length=2000)


class CommentReply(BaseModel):
    stored: bool


class Coverage(BaseModel):
    judgments_per_item: int = Field(description="R: judgments the design promised per item")
    items: int
    items_short: dict[str, int] = Field(
        description="items with fewer than R judgments from completed participants: their count"
    )
    participants_needed: int = Field(description="completed participants still needed")
    median_trial_ms: float | None = Field(description="from serving a trial to its answer")
    median_session_s: float | None


class Progress(BaseModel):
    participants: dict[str, int]
    screened_out: dict[str, int] = Field(
        default_factory=dict,
        description="visitors whose device lacked what the study requires, by what it lacked",
    )
    started: int
    completed: int
    answers: int
    answers_per_item: dict[str, int]
    comments: int
    closed: bool
    coverage: Coverage


class ParticipantStatus(BaseModel):
    participant: str
    status: str = Field(description="active | completed | failed_attention | abandoned")
    slot: int
    platform: str
    answered: int
    total: int
    started: str | None
    last_active: str | None


class Participants(BaseModel):
    participants: list[ParticipantStatus]


class Comment(BaseModel):
    participant: str
    position: int | None
    text: str
    time: str


class Comments(BaseModel):
    comments: list[Comment]


class Closed(BaseModel):
    closed: bool


class ErrorBody(BaseModel):
    error: str
    retry_after: float | None = None
    reload: bool | None = Field(
        default=None, description="true when the page is out of date: reload it (a 409)"
    )


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


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (503 for all)."""
    return {code: {"model": ErrorBody} for code in (*codes, 503)}


def _json(reply: BaseModel) -> Response:
    """A reply serialized by pydantic at once: the hot paths skip FastAPI's second validation
    of what they return (one more thread hop for a sync route)."""
    return Response(reply.model_dump_json(), media_type="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


_participant_bearer = HTTPBearer(auto_error=False, scheme_name="participant")
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="admin")
Credentials = HTTPAuthorizationCredentials | None


def create_app(
    study: Path,
    admin_token: str,
    completion_codes: dict[str, str] | None = None,
    settings: ServeSettings | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The ASGI app serving the study folder ``study``.

    Args:
        study: a folder made by ``percalign survey build``.
        admin_token: secret for the admin API (``Authorization: Bearer TOKEN``).
        completion_codes: Prolific completion codes by outcome (``completed``, ``failed``,
            ``no_consent``).
            A code is only ever sent to a participant who has answered every trial, and only
            the code of their outcome: with no ``failed`` code, a participant who failed the
            attention checks gets none. The ``no_consent`` code goes to whoever declines
            consent (it must pay nothing: see the README's Prolific settings).
        settings: how the study is served (platform checks, rate limits, timeouts).
        clock: the server's clock in seconds (tests pass a fake one).
    """
    study = Path(study)
    settings = settings or ServeSettings()
    store = SurveyStore(
        connect(study_url(study)),
        abandon_after_s=settings.abandon_after_min * 60,
        clock=clock,
        unanswered_after_s=settings.unanswered_after_min * 60,
    )
    codes = completion_codes or {}
    starts = RateLimit(settings)
    needs = Requirements.from_mapping(store.meta("requirements"))
    app = FastAPI(title="percalign survey", version="1", docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY, timeout_s=settings.body_timeout_s)
    app.add_middleware(SecurityHeaders, default_csp=csp())  # outermost: on every response

    @app.exception_handler(SurveyError)
    async def survey_error(_r: Request, exc: SurveyError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(StalePage)
    async def stale_page(_r: Request, exc: StalePage) -> JSONResponse:
        return JSONResponse({"error": str(exc), "reload": True}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"Invalid request: {where or 'body'}: {first.get('msg', 'bad value')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    for kind in _UNAVAILABLE:

        @app.exception_handler(kind)
        async def unavailable(_r: Request, exc: Exception) -> JSONResponse:
            _log.warning("database unavailable: %s", str(exc).splitlines()[0])
            message = (
                f"The study database cannot be reached right now; retry in {RETRY_AFTER_S} s "
                "(answers already acknowledged are safe)."
            )
            return JSONResponse(
                {"error": message, "retry_after": RETRY_AFTER_S},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    # async: a check without I/O needs no hop to the thread pool
    async def admin(credentials: Annotated[Credentials, Depends(_admin_bearer)]) -> None:
        given = credentials.credentials if credentials else ""
        if not given or not hmac.compare_digest(given.encode(), admin_token.encode()):
            raise SurveyError(
                401, "Admin token missing or wrong; send 'Authorization: Bearer TOKEN'."
            )

    async def participant(
        pid: Annotated[str, PathParam(pattern=PARTICIPANT_PATTERN)],
        credentials: Annotated[Credentials, Depends(_participant_bearer)],
    ) -> str:
        store.check_token(pid, credentials.credentials if credentials else None)
        return pid

    Admin = Annotated[None, Depends(admin)]
    Participant = Annotated[str, Depends(participant)]

    def code(outcome: str | None) -> str | None:
        """The completion code of a finished participant's outcome (never another's)."""
        key = {"completed": "completed", "failed_attention": "failed"}.get(outcome or "")
        return codes.get(key) if key else None

    def now_ms() -> int:
        return int(clock() * 1000)

    def image_url(pid: str, position: int, index: int) -> str:
        return (
            f"/images/{pid}/{position}/{index}/{store.signer.image_key(pid, position, index)}.png"
        )

    @functools.lru_cache(maxsize=4096)
    def data_url(sha: str) -> str | None:
        """A stimulus as a data: URL, or None when it is too large to embed (per process;
        stimuli never change)."""
        path = store.stimulus_path(sha)
        data = (study / path).read_bytes() if path is not None else b""
        if not data or len(data) > settings.embed_kb * 1024:
            return None
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")

    def served(pid: str, t: TrialView) -> TrialReply:
        tops = t.iris if t.iris is not None else [t.query or ""]
        shas = (*tops, *t.candidates)
        embedded = [url for sha in shas if (url := data_url(sha)) is not None]
        iris = [image_url(pid, t.position + i, 0) for i in range(len(tops))]
        return TrialReply(
            position=t.position,
            total=t.total,
            kind="choice" if t.iris is None else "screen",
            query=iris[0] if t.iris is None else None,
            candidates=[image_url(pid, t.position, i + 1) for i in range(len(t.candidates))],
            iris=None if t.iris is None else iris,
            shown=t.shown,
            step=t.step,
            steps=t.steps,
            embedded=embedded if len(embedded) == len(shas) else None,
        )

    def replied(pid: str, a: Answer) -> AnswerReply:
        """The reply to stored answers: the next trial, or the outcome's code."""
        reply = AnswerReply(
            position=a.position, next=a.next_position, done=a.done, duplicate=a.duplicate
        )
        if a.done:
            reply.outcome = a.outcome
            reply.completion_code = code(a.outcome)
            covered = settings.close_when_covered and a.outcome == "completed"
            if covered and not a.duplicate and not store.coverage()["items_short"]:
                store.set_meta("closed", True)
        elif a.next_position is not None:
            reply.trial = served(pid, store.serve(pid, a.next_position, now_ms()))
        return reply

    @functools.cache
    def page_state() -> tuple[dict[str, str], list[dict[str, Any]], str]:
        """The texts and practice trials the page shows, and the page's version: read once
        per process, so a change of texts takes a restart, and pages from before it are
        refused (see :func:`~percalign.survey.pages.page_version`)."""
        texts = store.meta("texts", {})
        practice = [
            {"targets": [f"/stimuli/{c}.png" for c in d["targets"]]}
            if "targets" in d  # a practice matching screen: copies of the targets to match
            else {
                "query": f"/stimuli/{d['query']}.png",
                "candidates": [f"/stimuli/{c}.png" for c in d["candidates"]],
                "correct": d["correct"],
            }
            for d in store.meta("practice", [])
        ]
        return texts, practice, page_version(texts, practice, store.min_display_ms)

    def check_version(version: str | None) -> None:
        if version is not None and version != page_state()[2]:
            raise StalePage()

    @app.get("/", response_class=HTMLResponse, responses=_errors(422))
    def landing(
        PROLIFIC_PID: PlatformId = None,
        STUDY_ID: PlatformId = None,
        SESSION_ID: PlatformId = None,
        workerId: PlatformId = None,
        hitId: PlatformId = None,
        assignmentId: PlatformId = None,
        turkSubmitTo: Annotated[str | None, Query(pattern=MTURK_SUBMIT)] = None,
        pid: PlatformId = None,
    ) -> HTMLResponse:
        """The participant page; Prolific and MTurk link parameters identify the person."""
        params: dict[str, Any]
        if PROLIFIC_PID is not None:
            params = {"platform": "prolific", "pid": PROLIFIC_PID}
            params.update(study=STUDY_ID, session=SESSION_ID)
        elif workerId is not None:
            submit = (turkSubmitTo or MTURK_HOSTS[0]).rstrip("/")
            params = {"platform": "mturk", "pid": workerId, "study": hitId}
            params.update(session=assignmentId, submit=submit + "/mturk/externalSubmit")
        else:
            params = {"platform": "link", "pid": pid or "", "study": None, "session": None}
        texts, practice, version = page_state()
        data = {
            "params": params,
            "requirements": needs.to_json() if needs.any else None,
            "texts": texts,
            "min_display_ms": store.min_display_ms,
            "version": version,
        }
        page, nonce = participant_page({**data, "practice": practice})
        return HTMLResponse(page, headers={"Content-Security-Policy": csp(nonce)})

    @app.get("/admin", response_class=HTMLResponse)
    def admin_html() -> HTMLResponse:
        """The admin page (it asks for the token and calls the admin API)."""
        page, nonce = admin_page()
        return HTMLResponse(page, headers={"Content-Security-Policy": csp(nonce)})

    @app.post(
        "/api/sessions",
        response_model=SessionReply,
        responses=_errors(400, 403, 408, 409, 413, 422, 429),
    )
    def start(body: SessionRequest, request: Request) -> SessionReply:
        """Start a session, or resume the one this platform id already has.

        Platform ``bot`` needs the study's bot token. Starts are rate limited per client
        address and for all clients together (429 with Retry-After); bots are not.
        """
        bot = body.platform == "bot"
        if bot and not store.signer.is_bot_token(body.bot_token):
            raise SurveyError(
                403,
                "Platform 'bot' is for simulated participants run by `percalign survey bots`, "
                "which sends the study's bot token.",
            )
        step = next_step(body.platform)
        locked = settings.prolific_study is not None and not settings.plain_links
        if locked and body.platform not in ("prolific", "bot"):
            raise SurveyError(
                403,
                "This study runs on Prolific only; open it from your Prolific study page. " + step,
            )
        if body.platform == "link" and not settings.plain_links:
            raise SurveyError(
                403,
                "This study is not open through a plain link; open it from your study "
                "platform's page. " + step,
            )
        if (
            body.platform == "prolific"
            and settings.prolific_study is not None
            and body.study != settings.prolific_study
        ):
            raise SurveyError(
                403,
                "This link is not for this study (its STUDY_ID is missing or another study's). "
                + step,
            )
        if not bot:
            lacks = screen_out(body.device, request)
            if lacks:
                raise SurveyError(403, f"This study needs {'; '.join(lacks.values())}. {step}")
            wait = starts.take(request.client.host if request.client else "")
            if wait:
                seconds = str(math.ceil(wait))
                raise StarletteHTTPException(
                    429,
                    f"Many people are starting right now: you are in the queue, and your turn "
                    f"comes in about {seconds} s. Keep this page open; it starts by itself.",
                    headers={"Retry-After": seconds},
                )
        screen = body.screen.model_dump() if body.screen else None
        try:
            row, resumed = store.start(body.platform, body.pid, body.study, body.session, screen)
        except SurveyError as exc:  # closed, or taken part already: say what to do now
            raise SurveyError(exc.status, f"{exc} {step}") from exc
        answered, total = store.progress(row.id)
        reply = SessionReply(
            participant=row.id,
            token=store.signer.session_token(row.id),
            resumed=resumed,
            next=answered,
            total=total,
            min_display_ms=store.min_display_ms,
        )
        if answered >= total:  # finished before: the code of their outcome, again
            reply.done, reply.outcome = True, store.status(row.id)
            reply.completion_code = code(reply.outcome)
        return reply

    def screen_out(device: Device | None, request: Request) -> dict[str, str]:
        """What the device lacks of the study's requirements, counted when anything."""
        if not needs.any:
            return {}
        d = device or Device(width=0, height=0, pointer="none")
        lacks = needs.unmet(d.width, d.height, d.pointer, request.headers.get("user-agent", ""))
        if lacks:
            store.count_screen_out(sorted(lacks))
        return lacks

    @app.post("/api/checks", response_model=CheckReply, responses=_errors(400, 408, 413, 422))
    def check(body: CheckRequest, request: Request) -> CheckReply:
        """Whether this device meets the study's requirements, asked before consent. One
        that does not is counted by what it lacks (nothing else is stored) and told what to
        do on its platform."""
        lacks = screen_out(body.device, request)
        return CheckReply(
            ok=not lacks,
            lacks=list(lacks.values()),
            next_step=next_step(body.platform) if lacks else None,
        )

    @app.post("/api/declines", response_model=DeclineReply, responses=_errors(400, 408, 413, 422))
    def decline(body: SessionRequest) -> DeclineReply:
        """Someone declined consent: nothing is stored, and the reply carries the no-consent
        code (it pays nothing; on Prolific it asks the participant to return the study)."""
        return DeclineReply(completion_code=codes.get("no_consent"))

    @app.get(
        "/api/participants/{pid}/trials/{position}",
        response_model=TrialReply,
        responses=_errors(401, 403, 404, 409, 422),
    )
    def trial(pid: Participant, position: Annotated[int, PathParam(ge=0)]) -> Response:
        """Trial ``position`` of this participant (answered ones and the next one only).

        Its image URLs are this trial's own and say nothing of the images behind them.
        """
        return _json(served(pid, store.trial(pid, position, now_ms())))

    @app.post(
        "/api/participants/{pid}/answers",
        response_model=AnswerReply,
        responses=_errors(400, 401, 403, 404, 409, 413, 422),
    )
    def answer(pid: Participant, body: AnswerRequest) -> Response:
        """Store an answer; a resend of an acknowledged answer changes nothing.

        A new answer needs its trial's ``shown`` value and comes at least the plan's
        ``min_display_ms`` after the trial was served (server clock), else 409. The reply
        carries the next trial, served now, so a trial costs one round trip; the reply to the
        last answer carries the completion code of the participant's outcome instead.
        """
        check_version(body.version)
        a = store.answer(
            pid,
            body.position,
            body.choice,
            body.rt_ms,
            body.client_time,
            shown=body.shown,
            now_ms=now_ms(),
            version=body.version,
        )
        return _json(replied(pid, a))

    @app.post(
        "/api/participants/{pid}/screens",
        response_model=AnswerReply,
        responses=_errors(400, 401, 403, 404, 409, 413, 422),
    )
    def screen(pid: Participant, body: ScreenRequest) -> Response:
        """Submit a matching screen: every IRI's assignment at once, stored all or none.

        The same rules as an answer: the screen's ``shown`` value, its minimum display time,
        a resend changes nothing and other assignments for a stored screen are refused (409).
        The screen counts as one trial; the reply carries the next one.
        """
        check_version(body.version)
        a = store.answer_screen(
            pid,
            body.position,
            body.assignments,
            body.rt_ms,
            body.client_time,
            shown=body.shown,
            now_ms=now_ms(),
            version=body.version,
        )
        return _json(replied(pid, a))

    @app.post(
        "/api/participants/{pid}/comments",
        response_model=CommentReply,
        responses=_errors(400, 401, 403, 404, 409, 413, 422),
    )
    def comment(pid: Participant, body: CommentRequest) -> CommentReply:
        """A free-text message from the participant ("report a problem")."""
        return CommentReply(stored=store.comment(pid, body.key, body.position, body.text))

    @app.get(
        "/images/{pid}/{position}/{index}/{key}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **_errors(404, 422)},
    )
    def trial_image(
        pid: Annotated[str, PathParam(pattern=PARTICIPANT_PATTERN)],
        position: Annotated[int, PathParam(ge=0, le=100_000)],
        index: Annotated[int, PathParam(ge=0, le=1_000)],
        key: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}\.png$")],
    ) -> FileResponse:
        """An image of one participant's trial, by the URL the trial gave (no token needed:
        the URL is unguessable)."""
        path = store.trial_image(pid, position, index, key.removesuffix(".png"))
        if path is None:
            raise SurveyError(404, "No such image.")
        return FileResponse(
            study / path,
            media_type="image/png",
            # a URL is one trial's image for good: never revalidated
            headers={"Cache-Control": "private, max-age=86400, immutable"},
        )

    @app.get(
        "/stimuli/{name}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **_errors(404, 422)},
    )
    def stimulus(name: Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}\.png$")]) -> FileResponse:
        """A stimulus image by content hash (the practice trials; immutable, cached for a
        year)."""
        path = store.stimulus_path(name.removesuffix(".png"))
        if path is None:
            raise SurveyError(404, "No such stimulus.")
        return FileResponse(
            study / path,
            media_type="image/png",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    @app.get("/api/admin/progress", response_model=Progress, responses=_errors(401))
    def progress(_: Admin) -> dict[str, Any]:
        """Participants by status, answers in all and per item, comments, open or closed, and
        the coverage: items short of R judgments from completed participants."""
        return store.summary()

    @app.get("/api/admin/participants", response_model=Participants, responses=_errors(401))
    def participants(_: Admin) -> dict[str, Any]:
        """Every participant's status (active, completed, failed_attention, abandoned) and
        progress, newest first."""
        return {"participants": store.participants()}

    @app.get("/api/admin/comments", response_model=Comments, responses=_errors(401))
    def comments(_: Admin) -> dict[str, Any]:
        """Participants' comments, newest first."""
        return {"comments": store.comments()}

    @app.get(
        "/api/admin/export.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}, **_errors(401)},
    )
    def export(_: Admin) -> Response:
        """Every answer as CSV, platform ids hashed, cells safe to open in a spreadsheet."""
        rows = [
            {k: spreadsheet_safe(v) for k, v in r.items()}
            for r in export_rows(store.engine, hash_ids=True)
        ]
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=sorted({k for r in rows for k in r}))
            writer.writeheader()
            writer.writerows(rows)
        return Response(
            buf.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": "attachment; filename=responses.csv"},
        )

    @app.post("/api/admin/close", response_model=Closed, responses=_errors(401))
    def close(_: Admin) -> Closed:
        """Close the study: no new sessions start (started ones can finish)."""
        store.set_meta("closed", True)
        return Closed(closed=True)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _json_errors(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _json_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Document every error as JSON, also on routes whose success is HTML, CSV or PNG."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and content:
                    response["content"] = {"application/json": next(iter(content.values()))}
    return schema


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (several workers): settings from the environment."""
    import os

    pairs = (
        ("completed", "PERCALIGN_COMPLETION_CODE"),
        ("failed", "PERCALIGN_FAILED_CODE"),
        ("no_consent", "PERCALIGN_NO_CONSENT_CODE"),
    )
    codes = {key: os.environ[var] for key, var in pairs if os.environ.get(var)}
    settings = ServeSettings(
        prolific_study=os.environ.get("PERCALIGN_PROLIFIC_STUDY") or None,
        plain_links=os.environ.get("PERCALIGN_PLAIN_LINKS", "1") == "1",
        abandon_after_min=float(os.environ.get("PERCALIGN_ABANDON_AFTER", "30")),
        unanswered_after_min=float(os.environ.get("PERCALIGN_UNANSWERED_AFTER", "5")),
        close_when_covered=os.environ.get("PERCALIGN_CLOSE_WHEN_COVERED", "0") == "1",
        embed_kb=float(os.environ.get("PERCALIGN_EMBED_KB", "64")),
    )
    return create_app(
        Path(os.environ["PERCALIGN_STUDY"]), os.environ["PERCALIGN_ADMIN_TOKEN"], codes, settings
    )
