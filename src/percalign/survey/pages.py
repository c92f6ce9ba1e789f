"""The survey's two HTML pages: the participant page and the admin page.

Nothing variable is ever pasted into HTML: the participant page gets its data as escaped JSON
in one attribute, and both pages insert text with ``textContent`` only. The inline script and
style carry a per-response nonce that the Content-Security-Policy header names, so injected
markup could not run a script even if it reached a page.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
from typing import Any

from percalign.survey.client import POLICY

__all__ = ["admin_page", "csp", "page_version", "participant_page"]

#: MTurk shows the study in a frame and receives the final form post.
MTURK_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")


def csp(nonce: str | None = None) -> str:
    """The Content-Security-Policy of a page with ``nonce``, or of any other response."""
    frames = "frame-ancestors 'self' " + " ".join(MTURK_HOSTS)
    if nonce is None:
        return f"default-src 'none'; {frames}"
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        f"img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
        f"form-action {' '.join(MTURK_HOSTS)}; {frames}"
    )


def participant_page(data: dict[str, Any]) -> tuple[str, str]:
    """(HTML, nonce) of the participant page: consent, instructions, practice, trials, debrief.

    The page retries by :data:`~percalign.survey.client.POLICY`: its script's ``RETRY`` is
    rendered from it (numbers only)."""
    nonce = secrets.token_urlsafe(16)
    page = _PARTICIPANT.replace("__NONCE__", nonce).replace("__RETRY__", _retry_policy())
    return page.replace("__DATA__", html.escape(json.dumps(data), quote=True)), nonce


def page_version(texts: dict[str, Any], practice: list[Any], min_display_ms: int) -> str:
    """The version of the participant page as served: a hash of its code and of everything it
    shows or enforces (texts, practice, display minimum). Answers record it, and an answer from
    a page of another version is refused, so nobody answers under texts that changed."""
    state = json.dumps([texts, practice, min_display_ms], sort_keys=True)
    code = _PARTICIPANT.replace("__RETRY__", _retry_policy())
    return hashlib.sha256((code + state).encode()).hexdigest()[:16]


def _retry_policy() -> str:
    """The page script's ``RETRY``: :data:`~percalign.survey.client.POLICY` in milliseconds."""
    return json.dumps(POLICY.for_page(), sort_keys=True)


def admin_page() -> tuple[str, str]:
    """(HTML, nonce) of the admin page: progress, coverage, participants, comments, export,
    close."""
    nonce = secrets.token_urlsafe(16)
    return _ADMIN.replace("__NONCE__", nonce), nonce


_PARTICIPANT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Image comparison study</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="__NONCE__">
 body{font-family:system-ui,sans-serif;max-width:900px;margin:1em auto;padding:0 1em;color:#222}
 .row{display:flex;flex-wrap:wrap;gap:1em;justify-content:center;align-items:center}
 .card{text-align:center} img{width:min(192px,38vw,30vh);height:auto;aspect-ratio:1;
 image-rendering:pixelated;border:3px solid #ddd;border-radius:6px;box-sizing:border-box}
 .ready img.cand{cursor:pointer}
 @media (hover:hover){.ready img.cand:hover{border-color:#36c}}
 img.chosen{border-color:#36c;outline:3px solid #36c} progress{width:100%} .hidden{display:none}
 #prompt,#feedback{text-align:center} #feedback{font-weight:bold;min-height:1.5em}
 #status{background:#fff3cd;border:1px solid #c90;border-radius:6px;padding:.5em 1em;
 margin:.5em 0} button{font-size:1.1em;padding:.5em 1.5em} #code{font-size:1.3em}
 #loadingCue{display:none;text-align:center;color:#555} .loading #loadingCue{display:block}
 .loading #queryBox,.loading #cands,.loading #screenBox{opacity:.2}
 details{margin-top:2em;color:#555} textarea{width:100%;box-sizing:border-box}
 #screenBox .row{gap:12px} .ready .target img{cursor:pointer}
 .iri img{cursor:pointer} .iri.selected img{border-color:#36c;outline:3px solid #36c}
 .iri.selected p{color:#36c}
 .iri p,.target p{margin:.1em;font-weight:bold;font-size:.8em;line-height:1.1}
 .iri p{min-height:2.2em}
 #screenBox hr{margin:.4em 0} #screenBox .card button{margin:.3em}
 @media (max-height:500px){body{margin:.3em auto} #prompt{margin:.2em 0;font-size:.9em}}
</style></head>
<body data-survey="__DATA__">
<p id="status" class="hidden" role="alert"></p>
<section id="consent" class="hidden"><h1>Image comparison study</h1><p id="consentText"></p>
<button id="agree">I agree, start</button> <button id="decline">I do not agree</button>
</section>
<section id="instructions" class="hidden"><h2>How to answer</h2><p id="instructionText"></p>
<button id="begin">Begin</button></section>
<section id="task" class="hidden"><progress id="bar" value="0" max="1"></progress>
<p id="prompt"><span id="how"></span> <span id="count"></span></p>
<p id="loadingCue" role="status">Loading the next images...</p>
<div class="card" id="queryBox"></div><p></p>
<div class="row" id="cands"></div>
<div id="screenBox" class="hidden"><div class="row" id="targets"></div><hr>
<div class="row" id="iris"></div><p class="card"><button id="submitScreen" disabled>Submit
</button></p></div><p id="feedback"></p>
<details id="report"><summary>Report a problem</summary>
<textarea id="comment" rows="3" maxlength="2000"></textarea>
<button id="sendComment">Send</button> <span id="commentStatus"></span></details></section>
<section id="done" class="hidden"><h2>Thank you!</h2><p id="doneText"></p>
<p id="codeBox" class="hidden">Your completion code: <code id="code"></code>
<button id="copy">Copy</button></p><p id="doneNote"></p></section>
<script nonce="__NONCE__">
const S = JSON.parse(document.body.dataset.survey);
const P = S.params, $ = id => document.getElementById(id);
let pid = null, token = null, pos = 0, total = 1, practice = null, trial = null;
let shownId = 0, shownAt = 0, readyAt = Infinity, accepting = false, readyTimer = null;
let started = false, finished = false;
// on a matching screen: the selected image, each one's target, and when the page (not the
// participant) last moved the selection: an input that soon after is a double tap or a doubled
// key meant for the image before, so it assigns nothing
let sel = 0, assign = [], movedAt = -Infinity;
const SETTLE_MS = 300;
const resumeKey = "percalign-started:" + P.platform + ":" + (P.pid || "") + ":" + (P.session || "");
const practiceKey = resumeKey + ":practiced";
const touch = matchMedia("(pointer: coarse)").matches;
$("consentText").textContent = S.texts.consent || "";
$("instructionText").textContent = S.texts.instructions || "";
$("doneText").textContent = S.texts.debrief || "All your answers are saved.";
function show(id){for(const s of ["consent","instructions","task","done"])
  $(s).classList.toggle("hidden", s!==id);}
function say(text){ $("status").textContent = text || "";
  $("status").classList.toggle("hidden", !text); }
const sleep = ms => new Promise(r=>setTimeout(r, ms));
// Retry with capped exponential backoff (and the server's Retry-After) on network errors,
// 5xx and 429; a 4xx is final. An answer is resent unchanged, and the server stores it once.
// RETRY is rendered from the Python client's policy, percalign.survey.client.POLICY.
const RETRY = __RETRY__;
const retryWait = i => Math.min(RETRY.cap_ms, RETRY.base_ms*2**i)*(0.5+0.5*Math.random());
async function call(url, opts={}, tries=RETRY.tries){
  opts.headers = Object.assign({"Content-Type":"application/json"}, opts.headers||{},
    token ? {"Authorization":"Bearer "+token} : {});
  let queued = 0;
  for(let i=0;;i++){
    let wait = retryWait(i);
    try{ const r = await fetch(url, opts);
      if(r.status===429){  // a queue, not an outage: say so, with the wait, and keep the place
        const hint = parseFloat(r.headers.get("Retry-After")) || 2;
        let body = {}; try{ body = await r.json(); }catch(e){ body = {}; }
        say(body.error || `You are in the queue; your turn comes in about ${hint} s.`);
        if(++queued > 120) throw Object.assign(new Error("The study is too busy right now. " +
          "Please come back to this page in a few minutes."), {fatal:true, status:429});
        await sleep(hint*1000*(0.8+0.4*Math.random())); i--; continue; }
      if(r.status>=500){
        const hint = parseFloat(r.headers.get("Retry-After"));
        if(hint>0) wait = Math.max(wait, Math.min(hint*1000, RETRY.cap_ms));
        throw new Error("server busy ("+r.status+")"); }
      const body = await r.json();
      if(!r.ok) throw Object.assign(new Error(body.error),
        {fatal:true, status:r.status, reload:!!body.reload});
      say(""); return body;
    }catch(e){
      if(e.fatal){ say(e.message); throw e; }
      if(i+1>=tries){ say("The study server cannot be reached" + (opts.saving ? ", so your " +
        "last choice is not saved" : "") + ". Reload this page later to continue where you " +
        "were."); throw e; }
      say(opts.saving ? "Saving your choice... (connection problem, retrying)" :
        "Connection problem, retrying...");
      await sleep(wait); }
  }
}
// An image, decoded; a failed load is retried (never shown half-loaded or missing).
async function image(url, tries=RETRY.tries){
  for(let i=0;;i++){
    const im = new Image(); im.src = i && !url.startsWith("data:") ? url + "?retry=" + i : url;
    try{ await im.decode(); return im; }
    catch(e){
      if(i+1>=tries){ say("The images of this trial cannot be loaded. Check your " +
        "connection, then reload this page: your answers so far are saved."); throw e; }
      say("Loading the images... (retrying)"); await sleep(retryWait(i)); }
  }
}
const images = urls => Promise.all(urls.map(u => image(u)));
// While a trial's images load, the last one fades and a line says so (after a moment, so
// a fast load does not flicker).
let loadTimer = null;
function loading(on){
  clearTimeout(loadTimer);
  if(on) loadTimer = setTimeout(() => $("task").classList.add("loading"), 200);
  else $("task").classList.remove("loading");
}
function shownNow(){
  loading(false); $("task").classList.remove("ready"); clearTimeout(readyTimer);
  shownAt = performance.now(); readyAt = shownAt + S.min_display_ms; accepting = true;
  readyTimer = setTimeout(() => $("task").classList.add("ready"), S.min_display_ms);
}
function display(ims, n, of, label){
  for(const [id, on] of [["queryBox",1], ["cands",1], ["screenBox",0]])
    $(id).classList.toggle("hidden", !on);
  const [query, ...cands] = ims; query.id = "query"; query.alt = "image to compare";
  $("queryBox").replaceChildren(query); const c = $("cands"); c.replaceChildren();
  const id = ++shownId;
  cands.forEach((im,i)=>{ im.className = "cand"; im.alt = "option "+(i+1);
    im.onclick = () => choose(i, id); c.appendChild(im); });
  const keys = cands.length===2 ? ", or press F (left) or J (right)" :
    ", or press 1 to " + cands.length;
  $("how").textContent = "Which image below looks more like the one on top? " +
    (touch ? "Tap it." : "Click it" + keys + ".");
  $("bar").max = of; $("bar").value = n; $("count").textContent = `${label} ${n+1} of ${of}.`;
  shownNow();
}
// A matching screen: every image below goes with one of the numbered images on top. The
// assignments so far survive a reload (this tab's storage) until the screen is submitted.
const screenKey = () => resumeKey + ":screen:" + pos;
function displayScreen(ims){
  for(const [id, on] of [["queryBox",0], ["cands",0], ["screenBox",1]])
    $(id).classList.toggle("hidden", !on);
  const n = trial.iris.length, k = trial.candidates.length;
  let saved = null;
  try{ saved = trial.practice ? null : JSON.parse(sessionStorage.getItem(screenKey())); }
  catch(e){ saved = null; }
  assign = Array.isArray(saved) && saved.length===n &&
    saved.every(a => a===null || (Number.isInteger(a) && a>=0 && a<k)) ? saved :
    Array(n).fill(null);
  sel = Math.max(0, assign.indexOf(null)); movedAt = -Infinity; const id = ++shownId;
  $("targets").replaceChildren(...ims.slice(n).map((im,j) => {
    const d = document.createElement("div"), l = document.createElement("p");
    d.className = "card target"; im.alt = "match " + (j+1); im.onclick = () => assignTo(j, id);
    l.textContent = String(j+1); d.append(im, l); return d; }));
  $("iris").replaceChildren(...ims.slice(0, n).map((im,i) => {
    const d = document.createElement("div"), l = document.createElement("p");
    d.className = "card iri"; d.id = "iri" + i; im.alt = "image " + (i+1);
    im.onclick = () => { sel = i; movedAt = -Infinity; paint(); }; d.append(im, l); return d; }));
  $("how").textContent = "Which numbered image on top does each image below go with? " +
    (touch ? "Tap an image below, then its match on top." : "Click an image below, then its " +
    "match on top, or press 1 to " + k + " (arrow keys pick the image below).") +
    " You can change any of them until you submit.";
  $("bar").max = trial.steps; $("bar").value = trial.step;
  $("count").textContent = `${trial.practice ? "Practice" : "Trial"} ${trial.step+1} of ` +
    `${trial.steps}.`;
  shownNow(); paint(); fitScreen();
}
// Size a screen's images so that the whole screen (prompt, targets, images, Submit) fits the
// window: every assignment is then made without scrolling, on a phone too.
function fitScreen(){
  if($("screenBox").classList.contains("hidden")) return;
  const all = [...document.querySelectorAll("#screenBox img")];
  const k = $("targets").children.length, n = $("iris").children.length;
  const width = $("screenBox").clientWidth, gap = 12;
  const set = px => all.forEach(im => { im.style.width = im.parentElement.style.width = px; });
  set("40px");
  // heights at 40 px: a row of targets, of images below (labels and gaps included), the rest
  const card = sel => $(sel).firstElementChild, gapOf = e => e.offsetHeight - 40;
  const tExtra = gapOf(card("targets")), iExtra = gapOf(card("iris")) + gap;
  const rowsAt = s => Math.ceil(n / Math.max(1, Math.floor((width + gap) / (s + gap))));
  const height = s => s + tExtra + rowsAt(s) * (s + iExtra);
  const bottom = $("submitScreen").getBoundingClientRect().bottom + scrollY + 8;
  const rest = bottom - height(40);
  let size = 40;
  for(let s = 140; s > 40; s -= 4){
    if(k * (s + gap) - gap <= width && rest + height(s) <= innerHeight){ size = s; break; }
  }
  set(size + "px");
}
addEventListener("resize", fitScreen);
function paint(){
  assign.forEach((a,i) => { const d = $("iri"+i); d.classList.toggle("selected", i===sel);
    d.lastChild.textContent = a===null ? "?" : "goes with " + (a+1); });
  $("submitScreen").disabled = assign.includes(null);
}
function assignTo(j, id){
  const now = performance.now();
  if(!accepting || id!==shownId || now < readyAt || now - movedAt < SETTLE_MS) return;
  assign[sel] = j;
  if(!trial.practice) sessionStorage.setItem(screenKey(), JSON.stringify(assign));
  const open = assign.indexOf(null);
  if(open>=0){ sel = open; movedAt = now; }  // the next open image, shown selected first
  paint(); const d = $("iri"+sel); if(d && d.scrollIntoView) d.scrollIntoView({block:"nearest"});
}
async function submitScreen(){
  if(!accepting || performance.now() < readyAt || assign.includes(null)) return;
  if(trial.practice) return checkPractice();
  accepting = false; $("submitScreen").disabled = true;
  let r;
  try{
    r = await call(`/api/participants/${pid}/screens`, {method:"POST", saving:true,
      body:JSON.stringify({position:pos, assignments:assign, rt_ms:performance.now()-shownAt,
      client_time:Date.now()/1000, shown:trial.shown, version:S.version})});
  }catch(e){ if(e.reload) return stale(); if(e.status===409) return resync();
    accepting = true; paint(); throw e; }
  sessionStorage.removeItem(screenKey());
  if(r.done) return finish(r);
  pos = r.next; $("feedback").textContent = "";
  return next(r.trial && r.trial.position===pos ? r.trial : null);
}
$("submitScreen").onclick = () => submitScreen();
// The device as the study's requirements see it (the browser is read from the User-Agent).
function device(){
  const pointer = matchMedia("(pointer: fine)").matches ? "mouse" :
    matchMedia("(pointer: coarse)").matches ? "touch" : "none";
  return {width:innerWidth, height:innerHeight, pointer};
}
function sessionBody(){
  const body = {platform:P.platform, pid:P.pid || crypto.randomUUID(), study:P.study,
    session:P.session, screen:{w:screen.width, h:screen.height}, device:device()};
  if(P.platform==="link"){ const k = "percalign-pid";
    body.pid = localStorage.getItem(k) || body.pid; localStorage.setItem(k, body.pid); }
  return body;
}
async function start(){
  const r = await call("/api/sessions", {method:"POST", body:JSON.stringify(sessionBody())});
  pid = r.participant; token = r.token; pos = r.next; total = r.total; started = true;
  sessionStorage.setItem(resumeKey, "1");
  if(r.done) return finish(r);
  show("task");
  if(pos===0 && S.practice.length && !sessionStorage.getItem(practiceKey)){
    practice = 0; return nextPractice(); }
  return next();
}
// A practice screen: the numbered targets and a copy of each below, to match with feedback.
async function practiceScreen(d){
  const order = d.targets.map((_,i)=>i).sort(()=>Math.random()-0.5);
  trial = {kind:"screen", practice:true, iris:order.map(i=>d.targets[i]), candidates:d.targets,
    correct:order, step:practice, steps:S.practice.length};
  loading(true);
  const ims = await images([...trial.iris, ...trial.candidates]);
  displayScreen(ims);
}
async function checkPractice(){
  const wrong = assign.map((a,i) => a===trial.correct[i] ? null : i+1).filter(x => x!==null);
  if(wrong.length){
    $("feedback").textContent = "Look again: each image below is a copy of one numbered image " +
      "on top. Not yet right: image" + (wrong.length>1 ? "s " : " ") + wrong.join(", ") + ".";
    return;
  }
  accepting = false;
  $("feedback").textContent = "Right: each copy goes with its original. In the real screens " +
    "the images below are not copies: match each with the one it looks most like. A few " +
    "screens are check screens with copies again.";
  await sleep(2500); practice += 1;
  if(practice < S.practice.length) return nextPractice();
  practice = null; sessionStorage.setItem(practiceKey, "1");
  $("feedback").textContent = "Practice done: now the real screens.";
  return next();
}
async function nextPractice(){
  if(S.practice[practice].targets) return practiceScreen(S.practice[practice]);
  const d = S.practice[practice]; const order = d.candidates.map((_,i)=>i)
    .sort(()=>Math.random()-0.5);
  d.shown = order; $("feedback").textContent = ""; loading(true);
  const ims = await images([d.query, ...order.map(i=>d.candidates[i])]);
  display(ims, practice, S.practice.length, "Practice");
}
// The trial at pos: the one the last answer's reply carried, else fetched.
async function next(given){
  loading(true);
  trial = given || await call(`/api/participants/${pid}/trials/${pos}`);
  const screen = trial.kind==="screen";
  const ims = await images(trial.embedded ||
    [...(screen ? trial.iris : [trial.query]), ...trial.candidates]);
  if(screen) return displayScreen(ims);
  display(ims, trial.step, trial.steps, "Trial");
}
// After a refusal (another tab answered, or the page fell behind): back to where the
// server is, and say so.
async function resync(){
  const r = await call("/api/sessions", {method:"POST", body:JSON.stringify(sessionBody())});
  pos = r.next; total = r.total;
  if(r.done) return finish(r);
  await next();
  say(`This study is open in another tab or window too. Continue here: trial ${pos+1} of ` +
    `${total} (your answers so far are saved). Close the other one.`);
}
// The study's page or texts changed since this page was loaded: the answer was not stored,
// and a reload brings the current page back at the same trial.
function stale(){
  finished = true;  // nothing unsaved to warn about
  say("This study's page was updated since you opened it, so your last choice was not " +
    "saved. Reload this page to continue where you were: your earlier answers are saved.");
}
async function choose(i, id){
  // one choice per displayed trial, and only once it has been on screen long enough
  if(!accepting || id!==shownId || performance.now() < readyAt) return;
  accepting = false; $("cands").children[i].classList.add("chosen");
  if(practice!==null){
    const d = S.practice[practice]; const same = d.shown[i]===d.correct;
    $("feedback").textContent = (same ? "Yes: that one is the same picture as the top one." :
      "Look again: the other one is the same picture as the top one.") +
      " In most real trials no picture below is the same as the top one: then go with " +
      "your impression. A few are check trials where one is the same: pick that one.";
    await sleep(1500); practice += 1;
    if(practice < S.practice.length) return nextPractice();
    practice = null; sessionStorage.setItem(practiceKey, "1");
    $("feedback").textContent = "Practice done: now the real trials.";
    return next();
  }
  let r;
  try{
    r = await call(`/api/participants/${pid}/answers`, {method:"POST", saving:true,
      body:JSON.stringify({position:pos, choice:i, rt_ms:performance.now()-shownAt,
      client_time:Date.now()/1000, shown:trial.shown, version:S.version})});
  }catch(e){ if(e.reload) return stale(); if(e.status===409) return resync(); throw e; }
  if(r.done) return finish(r);
  pos = r.next; $("feedback").textContent = "";
  return next(r.trial && r.trial.position===pos ? r.trial : null);
}
$("sendComment").onclick = async () => {
  const text = $("comment").value.trim(); if(!text || pid===null) return;
  $("commentStatus").textContent = "Sending...";
  await call(`/api/participants/${pid}/comments`, {method:"POST",
    body:JSON.stringify({key:crypto.randomUUID(), position:pos, text})});
  $("comment").value = ""; $("commentStatus").textContent = "Thank you, we got your message.";
};
function finish(r){
  finished = true; show("done");
  const code = r.completion_code;
  if(code){ $("code").textContent = code; $("codeBox").classList.remove("hidden"); }
  if(P.platform==="prolific"){
    if(code){
      $("doneNote").textContent = "Returning you to Prolific... If nothing happens, enter the " +
        "code above on Prolific.";
      location.href = "https://app.prolific.com/submissions/complete?cc=" +
        encodeURIComponent(code);
    } else if(r.outcome==="failed_attention"){
      $("doneNote").textContent = "Some of the check trials (where one image below was the " +
        "same as the top one) were not answered as expected, so this study has no " +
        "completion code for you. Your answers are saved. Please go back to Prolific and " +
        "message the researcher there.";
    } else {
      $("doneNote").textContent = "Your answers are saved. This study has no completion " +
        "code set up: please go back to Prolific and message the researcher there.";
    }
  } else if(P.platform==="mturk" && P.submit){
    const f = document.createElement("form"); f.method = "POST"; f.action = P.submit;
    for(const [k,v] of [["assignmentId", P.session || ""], ["completed", "1"]]){
      const inp = document.createElement("input"); inp.type = "hidden"; inp.name = k;
      inp.value = v; f.appendChild(inp); }
    document.body.appendChild(f); f.submit();
  }
}
$("copy").onclick = async () => {
  try{ await navigator.clipboard.writeText($("code").textContent);
    $("copy").textContent = "Copied"; }
  catch(e){ getSelection().selectAllChildren($("code")); $("copy").textContent = "Selected: " +
    "press Ctrl+C (or Cmd+C) to copy"; }
};
document.addEventListener("keydown", e => {
  if($("task").classList.contains("hidden") || e.target===$("comment")) return;
  if(e.repeat) return;  // a held key answers once
  if(trial && trial.kind==="screen" && $("cands").classList.contains("hidden")){
    const k = e.key, n = assign.length;
    if(/^[1-9]$/.test(k) && +k<=trial.candidates.length) assignTo(+k-1, shownId);
    else if(k==="ArrowLeft" || k==="ArrowUp"){ sel = (sel+n-1)%n; movedAt = -Infinity; paint(); }
    else if(k==="ArrowRight" || k==="ArrowDown"){ sel = (sel+1)%n; movedAt = -Infinity; paint(); }
    else if(k==="Enter") submitScreen();
    else return;
    e.preventDefault(); return;
  }
  const k = e.key.toLowerCase(), n = $("cands").children.length;
  let i = n===2 ? {f:0, arrowleft:0, j:1, arrowright:1}[k] : undefined;
  if(i===undefined && /^[1-9]$/.test(k) && +k<=n) i = +k-1;
  if(i!==undefined) choose(i, shownId);
});
window.addEventListener("beforeunload", e => {
  if(started && !finished){ e.preventDefault(); e.returnValue = ""; } });
function begin(){
  $("begin").disabled = true;
  start().catch(() => { $("begin").disabled = false; show(started ? "task" : "instructions"); });
}
// No consent: nothing is stored; Prolific participants go back with the no-consent code.
async function decline(){
  let r = {};
  try{ r = await call("/api/declines", {method:"POST", body:JSON.stringify(sessionBody())}, 3); }
  catch(e){ /* the note below still says what to do */ }
  finished = true; show("done");
  $("doneText").textContent = "You chose not to take part, so the study ended here. Nothing " +
    "you did on this page was stored.";
  const code = r.completion_code;
  if(P.platform==="prolific" && code){
    $("doneNote").textContent = "Returning you to Prolific... If nothing happens, please " +
      "return the study on Prolific.";
    location.href = "https://app.prolific.com/submissions/complete?cc=" +
      encodeURIComponent(code);
  } else if(P.platform==="prolific"){
    $("doneNote").textContent = "Please return the study on Prolific (its Return " +
      "submission button).";
  } else { $("doneNote").textContent = "You can close this page now."; }
}
$("agree").onclick = () => show("instructions"); $("begin").onclick = begin;
$("decline").onclick = decline;
// Before consent: does this device meet the study's requirements? If not, say what it lacks
// and what to do on the platform (the visit is counted; nothing else is stored).
async function welcome(){
  if(S.requirements && P.platform!=="bot"){
    let r = {ok:true};
    try{ r = await call("/api/checks", {method:"POST",
      body:JSON.stringify({platform:P.platform, device:device()})}, 3); }
    catch(e){ r = {ok:true}; }  // the server checks again when the session starts
    if(!r.ok){
      finished = true; show("done"); $("doneText").textContent = "Thank you for your " +
        "interest. This study needs " + r.lacks.join("; ") + ", so it cannot be done " +
        "on this device or browser.";
      $("doneNote").textContent = r.next_step || ""; return;
    }
  }
  show("consent");
}
if(sessionStorage.getItem(resumeKey)) begin(); else welcome();
</script></body></html>
"""

_ADMIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Study admin</title>
<style nonce="__NONCE__">body{font-family:system-ui,sans-serif;max-width:800px;margin:2em auto}
td,th{padding:.2em 1em;text-align:left;vertical-align:top}</style></head><body>
<h1>Study admin</h1><p><input id="token" type="password" placeholder="admin token" size="40">
<button id="load">Show progress</button> <button id="export">Download answers (CSV)</button>
<button id="close">Close the study</button></p><p id="msg"></p><table id="table"></table>
<section id="sequential" hidden><h2>Questions and looks</h2><div id="looks"></div>
<table id="questions"></table></section>
<h2>Coverage</h2><table id="coverage"></table><h3>Items short of judgments</h3>
<table id="short"></table>
<h2>Participants</h2><table id="people"></table>
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
  const q = b.sequential; $("sequential").hidden = !q;
  if(q){ $("looks").replaceChildren(...q.lines.map(line => {
      const p = document.createElement("p"); p.textContent = line; return p; }));
    fill($("questions"), [["question", "state", "looks", "participants", "estimate",
      "repeated CI"], ...q.questions.map(x => [x.question, x.state, x.looks, x.participants,
      x.estimate.toFixed(3), `[${x.low.toFixed(3)}, ${x.high.toFixed(3)}]`])]); }
  const v = b.coverage;
  fill($("coverage"), [["judgments per item (R)", v.judgments_per_item], ["items", v.items],
    ["items short of R", Object.keys(v.items_short).length],
    ["completed participants still needed", v.participants_needed],
    ["median time per trial (ms)", v.median_trial_ms ?? ""],
    ["median time per session (s)", v.median_session_s ?? ""]]);
  fill($("short"), [["item", "judgments"], ...Object.entries(v.items_short)]);
  const p = await (await fetch("/api/admin/participants", auth())).json();
  fill($("people"), [["participant", "status", "slot", "answered", "started", "last active"],
    ...p.participants.map(x => [x.participant, x.status, x.slot, `${x.answered}/${x.total}`,
      x.started ?? "", x.last_active ?? ""])]);
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
