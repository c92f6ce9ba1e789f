"""The survey web service: participant pages and API, admin API. No torch, no models.

Participants arrive with platform parameters (Prolific, MTurk or a plain link), answer trials
one at a time, and every answer is stored and acknowledged before the next trial shows.
"""

from __future__ import annotations

import csv
import hmac
import html
import io
import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from percalign.store.db import connect
from percalign.store.sessions import SurveyError, SurveyStore, export_rows
from percalign.store.study import study_url

__all__ = ["create_app"]

MAX_BODY = 16 * 1024
_SHA = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
MTURK_HOSTS = {"https://www.mturk.com", "https://workersandbox.mturk.com"}
PLATFORMS = {
    "prolific": ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    "mturk": ("workerId", "hitId", "assignmentId"),
}


class SessionRequest(BaseModel):
    platform: str = Field(pattern="^(prolific|mturk|link|bot)$")
    pid: str = Field(min_length=1, max_length=128)
    study: str | None = Field(default=None, max_length=128)
    session: str | None = Field(default=None, max_length=128)
    screen: dict[str, int] | None = None


class AnswerRequest(BaseModel):
    position: int = Field(ge=0)
    choice: int = Field(ge=0)
    rt_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    client_time: float | None = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    study: Path, admin_token: str, completion_codes: dict[str, str] | None = None
) -> FastAPI:
    """The ASGI app serving the study folder ``study``.

    Args:
        study: a folder made by ``percalign survey build``.
        admin_token: secret for the admin API (``Authorization: Bearer TOKEN``).
        completion_codes: Prolific completion codes by outcome (``completed``, ``failed``).
    """
    study = Path(study)
    store = SurveyStore(connect(study_url(study)))
    codes = completion_codes or {}
    app = FastAPI(title="percalign survey", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return _error(413, f"Request body over {MAX_BODY} bytes.")
        return await call_next(request)

    @app.exception_handler(SurveyError)
    async def survey_error(_r: Request, exc: SurveyError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"Invalid request: {where or 'body'}: {first.get('msg', 'bad value')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    def admin(request: Request) -> None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given, admin_token):
            raise SurveyError(
                401, "Admin token missing or wrong; send 'Authorization: Bearer TOKEN'."
            )

    @app.get("/", response_class=HTMLResponse)
    async def landing(request: Request) -> HTMLResponse:
        q = request.query_params
        platform = next((p for p, keys in PLATFORMS.items() if keys[0] in q), "link")
        if platform == "link":
            params: dict[str, Any] = {
                "platform": "link",
                "pid": q.get("pid", ""),
                "study": None,
                "session": None,
            }
        else:
            keys = PLATFORMS[platform]
            params = {
                "platform": platform,
                "pid": q.get(keys[0], ""),
                "study": q.get(keys[1]),
                "session": q.get(keys[2]),
            }
        for value in params.values():
            if value is not None and value != "" and not _ID.match(value):
                raise SurveyError(
                    400,
                    "Platform parameters may hold only letters, digits and ._:@- (at most 128).",
                )
        if platform != "link" and not params["pid"]:
            raise SurveyError(400, f"Missing {PLATFORMS[platform][0]} in the study link.")
        if platform == "mturk":
            submit = q.get("turkSubmitTo", "https://www.mturk.com")
            if submit.rstrip("/") not in MTURK_HOSTS:
                raise SurveyError(400, "turkSubmitTo must be MTurk's or its sandbox's address.")
            params["submit"] = submit.rstrip("/") + "/mturk/externalSubmit"
        practice = [
            {
                "query": f"/stimuli/{d['query']}.png",
                "candidates": [f"/stimuli/{c}.png" for c in d["candidates"]],
                "correct": d["correct"],
            }
            for d in store.meta("practice", [])
        ]
        return HTMLResponse(
            _page(
                {
                    "params": params,
                    "codes": codes,
                    "texts": store.meta("texts", {}),
                    "practice": practice,
                }
            )
        )

    @app.get("/admin", response_class=HTMLResponse)
    async def admin_page() -> HTMLResponse:
        return HTMLResponse(_ADMIN)

    @app.get("/api/admin/export.csv")
    async def export(request: Request) -> Any:
        admin(request)
        from fastapi.responses import Response

        rows = export_rows(store.engine, hash_ids=True)
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

    @app.post("/api/sessions")
    async def start(body: SessionRequest) -> dict[str, Any]:
        if not _ID.match(body.pid):
            raise SurveyError(422, "pid may hold only letters, digits and ._:@-.")
        row, resumed = store.start(body.platform, body.pid, body.study, body.session, body.screen)
        answered, total = store.progress(row.id)
        return {"participant": row.id, "resumed": resumed, "next": answered, "total": total}

    @app.get("/api/participants/{pid}/trials/{position}")
    async def trial(pid: str, position: int) -> dict[str, Any]:
        t = store.trial(pid, position)
        return {
            "position": t.position,
            "total": t.total,
            "query": f"/stimuli/{t.query}.png",
            "candidates": [f"/stimuli/{c}.png" for c in t.candidates],
        }

    @app.post("/api/participants/{pid}/answers")
    async def answer(pid: str, body: AnswerRequest) -> dict[str, Any]:
        a = store.answer(pid, body.position, body.choice, body.rt_ms, body.client_time)
        out: dict[str, Any] = {
            "position": a.position,
            "next": a.next_position,
            "done": a.done,
            "duplicate": a.duplicate,
        }
        if a.done:
            out["outcome"] = a.outcome
            out["completion_code"] = codes.get(
                "completed" if a.outcome == "completed" else "failed"
            )
        return out

    @app.get("/stimuli/{name}")
    async def stimulus(name: str) -> FileResponse:
        sha = name.removesuffix(".png")
        path = store.stimulus_path(sha) if _SHA.match(sha) else None
        if path is None:
            raise SurveyError(404, "No such stimulus.")
        return FileResponse(
            study / path,
            media_type="image/png",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    @app.get("/api/admin/progress")
    async def progress(request: Request) -> dict[str, Any]:
        admin(request)
        return store.summary()

    @app.post("/api/admin/close")
    async def close(request: Request) -> dict[str, Any]:
        admin(request)
        store.set_meta("closed", True)
        return {"closed": True}

    return app


def _page(data: dict[str, Any]) -> str:
    """The participant page: consent, instructions, practice, trials, debrief (small JS).

    Everything variable travels as escaped JSON in one attribute and is inserted as text.
    """
    return _TEMPLATE.replace("__DATA__", html.escape(json.dumps(data), quote=True))


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Image comparison study</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
 .row{display:flex;gap:2em;justify-content:center;align-items:center}
 .card{text-align:center} img{width:192px;height:192px;image-rendering:pixelated;
 border:3px solid #ddd;border-radius:6px} img.cand{cursor:pointer}
 img.cand:hover{border-color:#36c} progress{width:100%} .hidden{display:none}
 #prompt,#feedback{text-align:center} #status{color:#a00;min-height:1.5em}
 #feedback{font-weight:bold;min-height:1.5em} button{font-size:1.1em;padding:.5em 1.5em}
</style></head>
<body data-survey="__DATA__">
<section id="consent"><h1>Image comparison study</h1><p id="consentText"></p>
<button id="agree">I agree, start</button></section>
<section id="instructions" class="hidden"><h2>How to answer</h2><p id="instructionText"></p>
<button id="begin">Begin</button></section>
<section id="task" class="hidden"><progress id="bar" value="0" max="1"></progress>
<p id="prompt">Which image below looks more like the one on top? Click it, or press <b>F</b>
(left) / <b>J</b> (right). <span id="count"></span></p>
<div class="card"><img id="query" alt="image to compare"></div><p></p>
<div class="row" id="cands"></div><p id="feedback"></p><p id="status"></p></section>
<section id="done" class="hidden"><h2>Thank you!</h2><p id="doneText"></p></section>
<script>
const S = JSON.parse(document.body.dataset.survey);
let pid = null, pos = 0, total = 1, shownAt = 0, busy = true, practice = null;
const $ = id => document.getElementById(id);
$("consentText").textContent = S.texts.consent || "";
$("instructionText").textContent = S.texts.instructions || "";
$("doneText").textContent = S.texts.debrief || "All your answers are saved.";
function show(id){for(const s of ["consent","instructions","task","done"])
  $(s).classList.toggle("hidden", s!==id);}
async function call(url, opts, tries=6){
  for(let i=0;;i++){
    try{ const r = await fetch(url, opts);
      if(r.status>=500 || r.status===429) throw new Error("server busy ("+r.status+")");
      const body = await r.json();
      if(!r.ok) throw Object.assign(new Error(body.error), {fatal:true});
      $("status").textContent = ""; return body;
    }catch(e){ if(e.fatal || i>=tries){ $("status").textContent = e.message; throw e; }
      $("status").textContent = "Connection problem, retrying (your answers are safe)...";
      await new Promise(r=>setTimeout(r, 500*2**i)); }
  }
}
function preload(urls){ return Promise.all(urls.map(u => new Promise(ok => {
  const im = new Image(); im.onload = im.onerror = ok; im.src = u; }))); }
function display(query, cands, n, of, label){
  $("query").src = query; const c = $("cands"); c.innerHTML = "";
  cands.forEach((u,i)=>{ const im = document.createElement("img"); im.src=u;
    im.className="cand"; im.alt="option "+(i+1); im.onclick=()=>choose(i); c.appendChild(im); });
  $("bar").max = of; $("bar").value = n; $("count").textContent = `${label} ${n+1} of ${of}.`;
  shownAt = performance.now(); busy = false;
}
async function start(){
  const p = S.params; const body = {platform:p.platform, pid:p.pid || crypto.randomUUID(),
    study:p.study, session:p.session, screen:{w:screen.width,h:screen.height}};
  if(p.platform==="link"){ const k="percalign-pid"; body.pid = localStorage.getItem(k) || body.pid;
    localStorage.setItem(k, body.pid); }
  const r = await call("/api/sessions", {method:"POST",
    headers:{"Content-Type":"application/json"}, body:JSON.stringify(body)});
  pid = r.participant; pos = r.next; total = r.total;
  if(pos>=total) return finish(null);
  show("task");
  if(pos===0 && S.practice.length){ practice = 0; return nextPractice(); }
  next();
}
async function nextPractice(){
  const d = S.practice[practice]; const order = d.candidates.map((_,i)=>i)
    .sort(()=>Math.random()-0.5);
  d.shown = order; await preload([d.query, ...d.candidates]);
  display(d.query, order.map(i=>d.candidates[i]), practice, S.practice.length, "Practice");
}
async function next(){
  const t = await call(`/api/participants/${pid}/trials/${pos}`);
  await preload([t.query, ...t.candidates]); $("feedback").textContent = "";
  display(t.query, t.candidates, pos, total, "Trial");
}
async function choose(i){
  if(busy || pid===null) return; busy = true;
  if(practice!==null){
    const d = S.practice[practice]; const right = d.shown[i]===d.correct;
    $("feedback").textContent = right ? "Right: that is the same image." :
      "Not quite: the other image is the same as the one on top.";
    await new Promise(r=>setTimeout(r, 1200)); practice += 1;
    if(practice < S.practice.length) return nextPractice();
    practice = null; $("feedback").textContent = "Practice done: now the real trials.";
    return next();
  }
  const r = await call(`/api/participants/${pid}/answers`, {method:"POST",
    headers:{"Content-Type":"application/json"}, body:JSON.stringify({position:pos, choice:i,
    rt_ms:performance.now()-shownAt, client_time:Date.now()/1000})});
  if(r.done) return finish(r); pos = r.next; next();
}
function finish(r){
  show("done"); const p = S.params;
  const code = (r && r.completion_code) || S.codes.completed;
  if(p.platform==="prolific" && code){
    $("doneText").textContent += " Returning you to Prolific...";
    location.href = "https://app.prolific.com/submissions/complete?cc=" + encodeURIComponent(code);
  } else if(p.platform==="mturk" && p.submit){
    const f = document.createElement("form"); f.method = "POST"; f.action = p.submit;
    for(const [k,v] of [["assignmentId", p.session || ""], ["completed", "1"]]){
      const inp = document.createElement("input"); inp.type = "hidden"; inp.name = k;
      inp.value = v; f.appendChild(inp); }
    document.body.appendChild(f); f.submit();
  }
}
document.addEventListener("keydown", e => { if($("task").classList.contains("hidden")) return;
  const k = e.key.toLowerCase(); if(k==="f"||k==="arrowleft") choose(0);
  if(k==="j"||k==="arrowright") choose(1); });
$("agree").onclick = () => show("instructions"); $("begin").onclick = start;
</script></body></html>
"""

_ADMIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Study admin</title>
<style>body{font-family:system-ui,sans-serif;max-width:800px;margin:2em auto}
td,th{padding:.2em 1em;text-align:left}</style></head><body>
<h1>Study admin</h1><p><input id="token" type="password" placeholder="admin token" size="40">
<button id="load">Show progress</button> <button id="export">Download answers (CSV)</button>
<button id="close">Close the study</button></p><p id="msg"></p><table id="table"></table>
<script>
const $ = id => document.getElementById(id);
const auth = () => ({headers: {"Authorization": "Bearer " + $("token").value}});
async function load(){
  const r = await fetch("/api/admin/progress", auth()); const b = await r.json();
  if(!r.ok){ $("msg").textContent = b.error; return; } $("msg").textContent = "";
  const rows = [["started", b.started], ["completed", b.completed], ["answers", b.answers],
    ["closed", b.closed], ...Object.entries(b.participants).map(([k,v])=>["status "+k, v])];
  const t = $("table"); t.innerHTML = "";
  for(const [k,v] of rows){ const tr = t.insertRow(); tr.insertCell().textContent = k;
    tr.insertCell().textContent = String(v); }
}
$("load").onclick = load;
$("export").onclick = async () => { const r = await fetch("/api/admin/export.csv", auth());
  if(!r.ok){ $("msg").textContent = (await r.json()).error; return; }
  const a = document.createElement("a"); a.href = URL.createObjectURL(await r.blob());
  a.download = "responses.csv"; a.click(); };
$("close").onclick = async () => { if(!confirm("Close the study to new participants?")) return;
  const r = await fetch("/api/admin/close", {method: "POST", ...auth()}); await load(); };
</script></body></html>
"""


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (several workers): settings from the environment."""
    import os

    pairs = (("completed", "PERCALIGN_COMPLETION_CODE"), ("failed", "PERCALIGN_FAILED_CODE"))
    codes = {key: os.environ[var] for key, var in pairs if os.environ.get(var)}
    return create_app(
        Path(os.environ["PERCALIGN_STUDY"]), os.environ["PERCALIGN_ADMIN_TOKEN"], codes
    )
