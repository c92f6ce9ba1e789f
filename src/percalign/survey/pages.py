"""The survey's two HTML pages: the participant page and the admin page.

Nothing variable is ever pasted into HTML: the participant page gets its data as escaped JSON
in one attribute, and both pages insert text with ``textContent`` only. The inline script and
style carry a per-response nonce that the Content-Security-Policy header names, so injected
markup could not run a script even if it reached a page.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Any

__all__ = ["admin_page", "csp", "participant_page"]

#: MTurk shows the study in a frame and receives the final form post.
MTURK_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")


def csp(nonce: str | None = None) -> str:
    """The Content-Security-Policy of a page with ``nonce``, or of any other response."""
    frames = "frame-ancestors 'self' " + " ".join(MTURK_HOSTS)
    if nonce is None:
        return f"default-src 'none'; {frames}"
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        f"img-src 'self'; connect-src 'self'; base-uri 'none'; "
        f"form-action {' '.join(MTURK_HOSTS)}; {frames}"
    )


def participant_page(data: dict[str, Any]) -> tuple[str, str]:
    """(HTML, nonce) of the participant page: consent, instructions, practice, trials, debrief."""
    nonce = secrets.token_urlsafe(16)
    page = _PARTICIPANT.replace("__NONCE__", nonce)
    return page.replace("__DATA__", html.escape(json.dumps(data), quote=True)), nonce


def admin_page() -> tuple[str, str]:
    """(HTML, nonce) of the admin page: progress, comments, export, close."""
    nonce = secrets.token_urlsafe(16)
    return _ADMIN.replace("__NONCE__", nonce), nonce


_PARTICIPANT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Image comparison study</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="__NONCE__">
 body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
 .row{display:flex;gap:2em;justify-content:center;align-items:center}
 .card{text-align:center} img{width:192px;height:192px;image-rendering:pixelated;
 border:3px solid #ddd;border-radius:6px} img.cand{cursor:pointer}
 img.cand:hover{border-color:#36c} progress{width:100%} .hidden{display:none}
 #prompt,#feedback{text-align:center} #status{color:#a00;min-height:1.5em}
 #feedback{font-weight:bold;min-height:1.5em} button{font-size:1.1em;padding:.5em 1.5em}
 details{margin-top:2em;color:#555} textarea{width:100%}
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
<div class="row" id="cands"></div><p id="feedback"></p><p id="status"></p>
<details id="report"><summary>Report a problem</summary>
<textarea id="comment" rows="3" maxlength="2000"></textarea>
<button id="sendComment">Send</button> <span id="commentStatus"></span></details></section>
<section id="done" class="hidden"><h2>Thank you!</h2><p id="doneText"></p></section>
<script nonce="__NONCE__">
const S = JSON.parse(document.body.dataset.survey);
let pid = null, token = null, pos = 0, total = 1, shownAt = 0, busy = true, practice = null;
const $ = id => document.getElementById(id);
$("consentText").textContent = S.texts.consent || "";
$("instructionText").textContent = S.texts.instructions || "";
$("doneText").textContent = S.texts.debrief || "All your answers are saved.";
function show(id){for(const s of ["consent","instructions","task","done"])
  $(s).classList.toggle("hidden", s!==id);}
const sleep = ms => new Promise(r=>setTimeout(r, ms));
// Retry with capped exponential backoff (and the server's Retry-After) on network errors,
// 5xx and 429; a 4xx is final. An answer is resent unchanged, and the server stores it once.
async function call(url, opts={}, tries=20){
  opts.headers = Object.assign({"Content-Type":"application/json"}, opts.headers||{},
    token ? {"Authorization":"Bearer "+token} : {});
  for(let i=0;;i++){
    let wait = Math.min(500*2**i, 8000)*(0.5+Math.random());
    try{ const r = await fetch(url, opts);
      if(r.status>=500 || r.status===429){
        const hint = parseFloat(r.headers.get("Retry-After"));
        if(hint>0) wait = Math.max(wait, hint*1000);
        throw new Error("server busy ("+r.status+")"); }
      const body = await r.json();
      if(!r.ok) throw Object.assign(new Error(body.error), {fatal:true});
      $("status").textContent = ""; return body;
    }catch(e){
      if(e.fatal){ $("status").textContent = e.message; throw e; }
      if(i>=tries){ $("status").textContent = "The study server cannot be reached. Your " +
        "answers so far are saved: reload this page later to continue."; throw e; }
      $("status").textContent = "Connection problem, retrying (your answers are safe)...";
      await sleep(wait); }
  }
}
function preload(urls){ return Promise.all(urls.map(u => new Promise(ok => {
  const im = new Image(); im.onload = im.onerror = ok; im.src = u; }))); }
function display(query, cands, n, of, label){
  $("query").src = query; const c = $("cands"); c.replaceChildren();
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
  const r = await call("/api/sessions", {method:"POST", body:JSON.stringify(body)});
  pid = r.participant; token = r.token; pos = r.next; total = r.total;
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
    await sleep(1200); practice += 1;
    if(practice < S.practice.length) return nextPractice();
    practice = null; $("feedback").textContent = "Practice done: now the real trials.";
    return next();
  }
  const r = await call(`/api/participants/${pid}/answers`, {method:"POST",
    body:JSON.stringify({position:pos, choice:i, rt_ms:performance.now()-shownAt,
    client_time:Date.now()/1000})});
  if(r.done) return finish(r); pos = r.next; next();
}
$("sendComment").onclick = async () => {
  const text = $("comment").value.trim(); if(!text || pid===null) return;
  $("commentStatus").textContent = "Sending...";
  await call(`/api/participants/${pid}/comments`, {method:"POST",
    body:JSON.stringify({key:crypto.randomUUID(), position:pos, text})});
  $("comment").value = ""; $("commentStatus").textContent = "Thank you, we got your message.";
};
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
  if(e.target===$("comment")) return;
  const k = e.key.toLowerCase(); if(k==="f"||k==="arrowleft") choose(0);
  if(k==="j"||k==="arrowright") choose(1); });
$("agree").onclick = () => show("instructions"); $("begin").onclick = start;
</script></body></html>
"""

_ADMIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Study admin</title>
<style nonce="__NONCE__">body{font-family:system-ui,sans-serif;max-width:800px;margin:2em auto}
td,th{padding:.2em 1em;text-align:left;vertical-align:top}</style></head><body>
<h1>Study admin</h1><p><input id="token" type="password" placeholder="admin token" size="40">
<button id="load">Show progress</button> <button id="export">Download answers (CSV)</button>
<button id="close">Close the study</button></p><p id="msg"></p><table id="table"></table>
<h2>Comments</h2><table id="comments"></table>
<script nonce="__NONCE__">
const $ = id => document.getElementById(id);
const auth = () => ({headers: {"Authorization": "Bearer " + $("token").value}});
function fill(table, rows){ table.replaceChildren();
  for(const row of rows){ const tr = table.insertRow();
    for(const v of row) tr.insertCell().textContent = String(v); } }
async function load(){
  const r = await fetch("/api/admin/progress", auth()); const b = await r.json();
  if(!r.ok){ $("msg").textContent = b.error; return; } $("msg").textContent = "";
  fill($("table"), [["started", b.started], ["completed", b.completed], ["answers", b.answers],
    ["comments", b.comments], ["closed", b.closed],
    ...Object.entries(b.participants).map(([k,v])=>["status "+k, v])]);
  const c = await (await fetch("/api/admin/comments", auth())).json();
  fill($("comments"), c.comments.map(x => [x.time, x.participant, x.position ?? "", x.text]));
}
$("load").onclick = load;
$("export").onclick = async () => { const r = await fetch("/api/admin/export.csv", auth());
  if(!r.ok){ $("msg").textContent = (await r.json()).error; return; }
  const a = document.createElement("a"); a.href = URL.createObjectURL(await r.blob());
  a.download = "responses.csv"; a.click(); };
$("close").onclick = async () => { if(!confirm("Close the study to new participants?")) return;
  await fetch("/api/admin/close", {method: "POST", ...auth()}); await load(); };
</script></body></html>
"""
