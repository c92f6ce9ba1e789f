"""Hostile and unlucky requests: tokens, other people's sessions, changed answers, closed
studies, oversized bodies, security headers, and a database that cannot be written."""

import asyncio
import itertools
import re
import sqlite3

import httpx
import pytest

from percalign.store.db import connect
from percalign.store.export import export_rows
from percalign.store.study import DB_FILE, study_url
from percalign.survey.app import MAX_BODY, RETRY_AFTER_S, create_app

TOKEN = "adm1n-t0ken"
ADMIN = [
    ("get", "/api/admin/progress"),
    ("get", "/api/admin/comments"),
    ("get", "/api/admin/export.csv"),
    ("post", "/api/admin/close"),
]


@pytest.fixture(scope="module")
def study(make_study):
    return make_study()


def _run(coro):
    return asyncio.run(coro)


def _client(study):
    # a server clock that moves a second at every look: every trial is on screen long enough
    app = create_app(study, TOKEN, clock=itertools.count(1_700_000_000).__next__)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _shown(c, me, auth, position=0):
    """Get a trial (so that it can be answered); its 'shown' value."""
    r = await c.get(f"/api/participants/{me}/trials/{position}", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()["shown"]


async def _join(c, pid, **extra):
    r = await c.post("/api/sessions", json={"platform": "link", "pid": pid, **extra})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["participant"], {"Authorization": f"Bearer {body['token']}"}


def _stored(study, participant):
    engine = connect(study_url(study))
    rows = {r["trial"]: r["choice"] for r in export_rows(engine) if r["participant"] == participant}
    engine.dispose()
    return rows


@pytest.mark.parametrize(("method", "path"), ADMIN)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", "Basic YWRtaW46eA==", "participant"])
def test_admin_endpoints_refuse_without_the_right_token(study, method, path, auth):
    async def go():
        async with _client(study) as c:
            if auth == "participant":  # a participant's own token is no admin token
                _, headers = await _join(c, "curious-participant")
            else:
                headers = {"Authorization": auth} if auth else {}
            r = await getattr(c, method)(path, headers=headers)
            assert r.status_code == 401 and "Admin token" in r.json()["error"]
            ok = await c.get("/api/admin/progress", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200 and ok.json()["closed"] is False

    _run(go())


def test_a_participant_cannot_read_or_answer_another_participants_trials(study):
    async def go():
        async with _client(study) as c:
            alice, alice_auth = await _join(c, "alice")
            bob, bob_auth = await _join(c, "bob")
            trial, answers = f"/api/participants/{bob}/trials/0", f"/api/participants/{bob}/answers"
            assert (await c.get(trial)).status_code == 401
            stolen = await c.get(trial, headers=alice_auth)
            assert stolen.status_code == 403 and "not this participant's" in stolen.json()["error"]
            forged = await c.post(answers, json={"position": 0, "choice": 0}, headers=alice_auth)
            assert forged.status_code == 403
            spam = await c.post(
                f"/api/participants/{bob}/comments",
                json={"key": "k1", "text": "hi"},
                headers=alice_auth,
            )
            assert spam.status_code == 403
            assert _stored(study, bob) == {}
            # Bob's own token works, and Alice's works for Alice
            assert (await c.get(trial, headers=bob_auth)).status_code == 200
            mine = await c.get(f"/api/participants/{alice}/trials/0", headers=alice_auth)
            assert mine.status_code == 200

    _run(go())


def test_knowing_someones_platform_id_is_not_enough_to_take_over_their_session(study):
    async def go():
        async with _client(study) as c:
            body = {"platform": "prolific", "pid": "PRO123", "study": "S", "session": "sess-A"}
            first = (await c.post("/api/sessions", json=body)).json()
            back = (await c.post("/api/sessions", json=body)).json()
            assert back["resumed"] and back["participant"] == first["participant"]
            assert back["token"] == first["token"]
            for other in ({**body, "session": "sess-B"}, {**body, "session": None}):
                r = await c.post("/api/sessions", json=other)
                assert r.status_code == 409 and "takes part once" in r.json()["error"]
            progress = await c.get(
                "/api/admin/progress", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert progress.status_code == 200

    _run(go())
    with sqlite3.connect(study / DB_FILE) as db:
        n = db.execute("select count(*) from participants where platform_pid='PRO123'").fetchone()
    assert n == (1,)


def test_an_acknowledged_answer_cannot_change(study):
    async def go():
        async with _client(study) as c:
            me, auth = await _join(c, "steadfast")
            url = f"/api/participants/{me}/answers"
            shown = await _shown(c, me, auth)
            first = await c.post(
                url, json={"position": 0, "choice": 1, "shown": shown}, headers=auth
            )
            assert first.status_code == 200 and not first.json()["duplicate"]
            change = await c.post(url, json={"position": 0, "choice": 0}, headers=auth)
            assert change.status_code == 409
            assert "cannot change" in change.json()["error"]
            resend = await c.post(url, json={"position": 0, "choice": 1}, headers=auth)
            assert resend.status_code == 200 and resend.json()["duplicate"]
            return me

    me = _run(go())
    assert _stored(study, me) == {0: 1}


def test_a_closed_study_starts_no_sessions_but_started_ones_finish(make_study):
    closed = make_study()

    async def go():
        async with _client(closed) as c:
            early, auth = await _join(c, "early-bird")
            r = await c.post("/api/admin/close", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.json() == {"closed": True}
            late = await c.post("/api/sessions", json={"platform": "link", "pid": "late"})
            assert late.status_code == 403 and "closed" in late.json()["error"]
            again, _ = await _join(c, "early-bird")  # resuming is not a new session
            assert again == early
            a = await c.post(
                f"/api/participants/{early}/answers",
                json={"position": 0, "choice": 0, "shown": await _shown(c, early, auth)},
                headers=auth,
            )
            assert a.status_code == 200

    _run(go())


def test_body_limits_hold_for_declared_and_chunked_bodies(study, live_server):
    def chunks():
        for _ in range(40):
            yield b" " * 1024  # 40 KiB with no Content-Length (chunked transfer)

    with live_server(create_app(study, TOKEN)) as url:
        declared = httpx.post(
            f"{url}/api/sessions",
            content=b"{" + b" " * (MAX_BODY + 1) + b"}",
            headers={"content-type": "application/json"},
        )
        chunked = httpx.post(
            f"{url}/api/sessions", content=chunks(), headers={"content-type": "application/json"}
        )
        small = httpx.post(f"{url}/api/sessions", json={"platform": "link", "pid": "small-body"})
    for r in (declared, chunked):
        assert r.status_code == 413 and f"over {MAX_BODY} bytes" in r.json()["error"]
    assert small.status_code == 200


def test_every_response_carries_security_headers(study):
    async def go():
        async with _client(study) as c:
            page = await c.get("/", params={"PROLIFIC_PID": "abc", "SESSION_ID": "s"})
            api = await c.get("/api/admin/progress")
            return page, api

    page, api = _run(go())
    nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
    assert "frame-ancestors 'self' https://www.mturk.com" in page.headers["content-security-policy"]
    for r in (page, api):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.slow
def test_a_locked_database_gets_503_with_a_retry_hint_and_the_resent_answer_is_kept(study):
    async def go():
        async with _client(study) as c:
            me, auth = await _join(c, "patient")
            url = f"/api/participants/{me}/answers"
            body = {"position": 0, "choice": 1, "shown": await _shown(c, me, auth)}
            blocker = sqlite3.connect(study / DB_FILE, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
            try:
                busy = await c.post(url, json=body, headers=auth)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == str(RETRY_AFTER_S)
            assert busy.json()["retry_after"] == RETRY_AFTER_S
            assert "cannot be reached" in busy.json()["error"]
            again = await c.post(url, json=body, headers=auth)
            assert again.status_code == 200 and not again.json()["duplicate"]
            return me

    me = _run(go())
    assert _stored(study, me) == {0: 1}


def test_comments_are_stored_once_and_kept_as_plain_text(study):
    payload = "<img src=x onerror=alert(1)><script>alert(2)</script>"

    async def go():
        async with _client(study) as c:
            me, auth = await _join(c, "commenter")
            url = f"/api/participants/{me}/comments"
            body = {"key": "c-1", "position": 0, "text": payload}
            first = await c.post(url, json=body, headers=auth)
            resend = await c.post(url, json=body, headers=auth)
            other = await c.post(url, json={**body, "text": "changed"}, headers=auth)
            listed = await c.get(
                "/api/admin/comments", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            return first, resend, other, listed, me

    first, resend, other, listed, me = _run(go())
    assert first.json() == {"stored": True} and resend.json() == {"stored": False}
    assert other.status_code == 409
    mine = [c for c in listed.json()["comments"] if c["participant"] == me]
    assert [c["text"] for c in mine] == [payload]
    assert listed.headers["content-type"] == "application/json"


def test_a_non_ascii_bot_token_is_refused_not_a_server_error(study):
    # found by the schemathesis fuzz run: compare_digest refuses non-ASCII str
    async def go():
        async with _client(study) as c:
            body = {"platform": "bot", "pid": "b0", "bot_token": "jeton-\u00e9t\u00e9"}
            r = await c.post("/api/sessions", json=body)
            assert r.status_code == 403 and "bot token" in r.json()["error"]

    _run(go())
