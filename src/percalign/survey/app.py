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

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from percalign.store.sessions import SurveyError
from percalign.survey import admin, participants
from percalign.survey.guard import BodyLimit, SecurityHeaders
from percalign.survey.limits import ServeSettings
from percalign.survey.pages import csp
from percalign.survey.service import Service, StalePage, error_reply

__all__ = ["MAX_BODY", "RETRY_AFTER_S", "create_app"]

_log = logging.getLogger("percalign.survey")

#: Largest request body accepted, in bytes (answers and comments are far smaller).
MAX_BODY = 16 * 1024
#: Seconds a client is asked to wait when the database cannot be reached.
RETRY_AFTER_S = 2

# The database is down, restarting, locked past the busy timeout, or the pool is exhausted.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)


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
    settings = settings or ServeSettings()
    app = FastAPI(title="percalign survey", version="1", docs_url=None, redoc_url=None)
    app.state.service = Service(Path(study), admin_token, completion_codes, settings, clock)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY, timeout_s=settings.body_timeout_s)
    app.add_middleware(SecurityHeaders, default_csp=csp())  # outermost: on every response

    @app.exception_handler(SurveyError)
    async def survey_error(_r: Request, exc: SurveyError) -> JSONResponse:
        return error_reply(exc.status, str(exc))

    @app.exception_handler(StalePage)
    async def stale_page(_r: Request, exc: StalePage) -> JSONResponse:
        return JSONResponse({"error": str(exc), "reload": True}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_reply(
            422, f"Invalid request: {where or 'body'}: {first.get('msg', 'bad value')}"
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_reply(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

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

    app.include_router(participants.router)
    app.include_router(admin.router)

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
