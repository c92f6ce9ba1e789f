"""The participant's side of the survey API: the page, sessions, trials, answers, images.

Each route reaches the study through the :class:`~percalign.survey.service.Service`
dependency; the ``/api/participants/{pid}/...`` routes need the participant's session token.
"""

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from percalign.store.sessions import SurveyError
from percalign.survey.pages import MTURK_HOSTS, csp, participant_page
from percalign.survey.schemas import (
    ID_PATTERN,
    MTURK_SUBMIT,
    PARTICIPANT_PATTERN,
    AnswerReply,
    AnswerRequest,
    CheckReply,
    CheckRequest,
    CommentReply,
    CommentRequest,
    DeclineReply,
    ScreenRequest,
    SessionReply,
    SessionRequest,
    StudyState,
    TrialReply,
)
from percalign.survey.service import Participant, Served, errors, json_reply, next_step

__all__ = ["router"]

router = APIRouter()
PlatformId = Annotated[str | None, Query(pattern=ID_PATTERN)]


@router.get("/", response_class=HTMLResponse, responses=errors(422))
def landing(
    service: Served,
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
    texts, practice, version = service.page_state()
    data = {
        "params": params,
        "requirements": service.needs.to_json() if service.needs.any else None,
        "texts": texts,
        "min_display_ms": service.store.min_display_ms,
        "version": version,
    }
    page, nonce = participant_page({**data, "practice": practice})
    return HTMLResponse(page, headers={"Content-Security-Policy": csp(nonce)})


@router.get("/api/study", response_model=StudyState)
def study(service: Served) -> StudyState:
    """Whether the study takes new sessions (a closed one, or a sequential one whose questions
    are decided, does not)."""
    return StudyState(open=not service.store.meta("closed", False))


@router.post(
    "/api/sessions",
    response_model=SessionReply,
    responses=errors(400, 403, 408, 409, 413, 422, 429),
)
def start(service: Served, body: SessionRequest, request: Request) -> SessionReply:
    """Start a session, or resume the one this platform id already has.

    Platform ``bot`` needs the study's bot token. Starts are rate limited per client
    address and for all clients together (429 with Retry-After); bots are not.
    """
    bot = body.platform == "bot"
    if bot and not service.store.signer.is_bot_token(body.bot_token):
        raise SurveyError(
            403,
            "Platform 'bot' is for simulated participants run by `percalign survey bots`, "
            "which sends the study's bot token.",
        )
    step = next_step(body.platform)
    locked = service.settings.prolific_study is not None and not service.settings.plain_links
    if locked and body.platform not in ("prolific", "bot"):
        raise SurveyError(
            403,
            "This study runs on Prolific only; open it from your Prolific study page. " + step,
        )
    if body.platform == "link" and not service.settings.plain_links:
        raise SurveyError(
            403,
            "This study is not open through a plain link; open it from your study "
            "platform's page. " + step,
        )
    if (
        body.platform == "prolific"
        and service.settings.prolific_study is not None
        and body.study != service.settings.prolific_study
    ):
        raise SurveyError(
            403,
            "This link is not for this study (its STUDY_ID is missing or another study's). " + step,
        )
    if not bot:
        lacks = service.screen_out(body.device, request)
        if lacks:
            raise SurveyError(403, f"This study needs {'; '.join(lacks.values())}. {step}")
        wait = service.starts.take(request.client.host if request.client else "")
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
        row, resumed = service.store.start(
            body.platform, body.pid, body.study, body.session, screen, service.new_slot
        )
    except SurveyError as exc:  # closed, or taken part already: say what to do now
        raise SurveyError(exc.status, f"{exc} {step}") from exc
    answered, total = service.store.progress(row.id)
    reply = SessionReply(
        participant=row.id,
        token=service.store.signer.session_token(row.id),
        resumed=resumed,
        next=answered,
        total=total,
        min_display_ms=service.store.min_display_ms,
    )
    if answered >= total:  # finished before: the code of their outcome, again
        reply.done, reply.outcome = True, service.store.status(row.id)
        reply.completion_code = service.code(reply.outcome)
    return reply


@router.post("/api/checks", response_model=CheckReply, responses=errors(400, 408, 413, 422))
def check(service: Served, body: CheckRequest, request: Request) -> CheckReply:
    """Whether this device meets the study's requirements, asked before consent. One
    that does not is counted by what it lacks (nothing else is stored) and told what to
    do on its platform."""
    lacks = service.screen_out(body.device, request)
    return CheckReply(
        ok=not lacks,
        lacks=list(lacks.values()),
        next_step=next_step(body.platform) if lacks else None,
    )


@router.post("/api/declines", response_model=DeclineReply, responses=errors(400, 408, 413, 422))
def decline(service: Served, body: SessionRequest) -> DeclineReply:
    """Someone declined consent: nothing is stored, and the reply carries the no-consent
    code (it pays nothing; on Prolific it asks the participant to return the study)."""
    return DeclineReply(completion_code=service.codes.get("no_consent"))


@router.get(
    "/api/participants/{pid}/trials/{position}",
    response_model=TrialReply,
    responses=errors(401, 403, 404, 409, 422),
)
def trial(service: Served, pid: Participant, position: Annotated[int, PathParam(ge=0)]) -> Response:
    """Trial ``position`` of this participant (answered ones and the next one only).

    Its image URLs are this trial's own and say nothing of the images behind them.
    """
    return json_reply(
        service.trial_reply(pid, service.store.trial(pid, position, service.now_ms()))
    )


@router.post(
    "/api/participants/{pid}/answers",
    response_model=AnswerReply,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)
def answer(service: Served, pid: Participant, body: AnswerRequest) -> Response:
    """Store an answer; a resend of an acknowledged answer changes nothing.

    A new answer needs its trial's ``shown`` value and comes at least the plan's
    ``min_display_ms`` after the trial was served (server clock), else 409. The reply
    carries the next trial, served now, so a trial costs one round trip; the reply to the
    last answer carries the completion code of the participant's outcome instead.
    """
    service.check_version(body.version)
    a = service.store.answer(
        pid,
        body.position,
        body.choice,
        body.rt_ms,
        body.client_time,
        shown=body.shown,
        now_ms=service.now_ms(),
        version=body.version,
    )
    return json_reply(service.replied(pid, a))


@router.post(
    "/api/participants/{pid}/screens",
    response_model=AnswerReply,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)
def screen(service: Served, pid: Participant, body: ScreenRequest) -> Response:
    """Submit a matching screen: every IRI's assignment at once, stored all or none.

    The same rules as an answer: the screen's ``shown`` value, its minimum display time,
    a resend changes nothing and other assignments for a stored screen are refused (409).
    The screen counts as one trial; the reply carries the next one.
    """
    service.check_version(body.version)
    a = service.store.answer_screen(
        pid,
        body.position,
        body.assignments,
        body.rt_ms,
        body.client_time,
        shown=body.shown,
        now_ms=service.now_ms(),
        version=body.version,
    )
    return json_reply(service.replied(pid, a))


@router.post(
    "/api/participants/{pid}/comments",
    response_model=CommentReply,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)
def comment(service: Served, pid: Participant, body: CommentRequest) -> CommentReply:
    """A free-text message from the participant ("report a problem")."""
    return CommentReply(stored=service.store.comment(pid, body.key, body.position, body.text))


@router.get(
    "/images/{pid}/{position}/{index}/{key}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, **errors(404, 422)},
)
def trial_image(
    service: Served,
    pid: Annotated[str, PathParam(pattern=PARTICIPANT_PATTERN)],
    position: Annotated[int, PathParam(ge=0, le=100_000)],
    index: Annotated[int, PathParam(ge=0, le=1_000)],
    key: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}\.png$")],
) -> FileResponse:
    """An image of one participant's trial, by the URL the trial gave (no token needed:
    the URL is unguessable)."""
    path = service.store.trial_image(pid, position, index, key.removesuffix(".png"))
    if path is None:
        raise SurveyError(404, "No such image.")
    return FileResponse(
        service.study / path,
        media_type="image/png",
        # a URL is one trial's image for good: never revalidated
        headers={"Cache-Control": "private, max-age=86400, immutable"},
    )


@router.get(
    "/stimuli/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, **errors(404, 422)},
)
def stimulus(
    service: Served, name: Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}\.png$")]
) -> FileResponse:
    """A stimulus image by content hash (the practice trials; immutable, cached for a
    year)."""
    path = service.store.stimulus_path(name.removesuffix(".png"))
    if path is None:
        raise SurveyError(404, "No such stimulus.")
    return FileResponse(
        service.study / path,
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
