"""The researcher's side of the survey API: the admin page, progress, participants,
comments, the export and closing the study. Every API route needs the admin token.
"""

import csv
import io
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from percalign.scoring.stopping import describe_looks
from percalign.store.export import export_rows, spreadsheet_safe
from percalign.survey.pages import admin_page, csp
from percalign.survey.schemas import Closed, Comments, Participants, Progress
from percalign.survey.service import Admin, Served, errors

__all__ = ["router"]

router = APIRouter()


@router.get("/admin", response_class=HTMLResponse)
def admin_html() -> HTMLResponse:
    """The admin page (it asks for the token and calls the admin API)."""
    page, nonce = admin_page()
    return HTMLResponse(page, headers={"Content-Security-Policy": csp(nonce)})


@router.get("/api/admin/progress", response_model=Progress, responses=errors(401))
def progress(_: Admin, service: Served) -> dict[str, Any]:
    """Participants by status, answers in all and per item, comments, open or closed, and
    the coverage: items short of R judgments from completed participants."""
    summary = service.store.summary()
    if summary["sequential"]:
        summary["sequential"]["lines"] = describe_looks(summary["sequential"])
    return summary


@router.get("/api/admin/participants", response_model=Participants, responses=errors(401))
def participants(_: Admin, service: Served) -> dict[str, Any]:
    """Every participant's status (active, completed, failed_attention, abandoned) and
    progress, newest first."""
    return {"participants": service.store.participants()}


@router.get("/api/admin/comments", response_model=Comments, responses=errors(401))
def comments(_: Admin, service: Served) -> dict[str, Any]:
    """Participants' comments, newest first."""
    return {"comments": service.store.comments()}


@router.get(
    "/api/admin/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **errors(401)},
)
def export(_: Admin, service: Served) -> Response:
    """Every answer as CSV, platform ids hashed, cells safe to open in a spreadsheet."""
    rows = [
        {k: spreadsheet_safe(v) for k, v in r.items()}
        for r in export_rows(service.store.engine, hash_ids=True)
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


@router.post("/api/admin/close", response_model=Closed, responses=errors(401))
def close(_: Admin, service: Served) -> Closed:
    """Close the study: no new sessions start (started ones can finish)."""
    service.store.set_meta("closed", True)
    return Closed(closed=True)
