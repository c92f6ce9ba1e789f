"""Who may start a session, how many, and how much the service holds for one client: the
bot token, the Prolific study id, plain links, rate limits, the comment bound, slow bodies,
and spreadsheet-safe exports."""

import asyncio
import csv
import io
import socket

import httpx
import pytest

import percalign.store.comments as comments
from percalign.store.study import bot_token
from percalign.survey.app import create_app
from percalign.survey.limits import ServeSettings

TOKEN = "limits-admin"


@pytest.fixture(scope="module")
def study(make_study):
    return make_study()


def _run(coro):
    return asyncio.run(coro)


def _client(app, host="10.0.0.1"):
    transport = httpx.ASGITransport(app=app, client=(host, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def test_only_the_bot_token_makes_a_simulated_participant(study):
    async def go():
        async with _client(create_app(study, TOKEN)) as c:
            for token in (None, "guess"):
                r = await c.post(
                    "/api/sessions", json={"platform": "bot", "pid": "fake", "bot_token": token}
                )
                assert r.status_code == 403 and "bot token" in r.json()["error"]
            body = {"platform": "bot", "pid": "real-bot", "bot_token": bot_token(study)}
            s = (await c.post("/api/sessions", json=body)).json()
            auth = {"Authorization": f"Bearer {s['token']}"}
            url = f"/api/participants/{s['participant']}"
            t = (await c.get(f"{url}/trials/0", headers=auth)).json()
            # simulated participants answer at once (people must wait min_display_ms)
            a = await c.post(
                f"{url}/answers",
                json={"position": 0, "choice": 0, "shown": t["shown"]},
                headers=auth,
            )
            assert a.status_code == 200

    _run(go())


def test_the_prolific_study_id_and_plain_links_are_checked_when_configured(study):
    settings = ServeSettings(prolific_study="REAL", plain_links=False)

    async def go():
        async with _client(create_app(study, TOKEN, settings=settings)) as c:
            base = {"platform": "prolific", "pid": "pp1", "session": "s1"}
            for other in ("OTHER", None):
                r = await c.post("/api/sessions", json={**base, "study": other})
                assert r.status_code == 403 and "STUDY_ID" in r.json()["error"]
            ok = await c.post("/api/sessions", json={**base, "study": "REAL"})
            assert ok.status_code == 200
            # under the Prolific lock, MTurk parameters (a retake under new ids) and plain
            # links are refused, each with what to do now
            for body in (
                {"platform": "link", "pid": "pp1"},
                {"platform": "mturk", "pid": "W1", "study": "REAL", "session": "A1"},
            ):
                r = await c.post("/api/sessions", json=body)
                assert r.status_code == 403, r.text
                assert "runs on Prolific only" in r.json()["error"]
            mturk = await c.post(
                "/api/sessions", json={"platform": "mturk", "pid": "W1", "session": "A1"}
            )
            assert "return the HIT on MTurk" in mturk.json()["error"]
            wrong = await c.post("/api/sessions", json={**base, "pid": "pp2", "study": "X"})
            assert "return the study on Prolific" in wrong.json()["error"]

    _run(go())


def test_plain_links_alone_can_be_turned_off(study):
    settings = ServeSettings(plain_links=False)

    async def go():
        async with _client(create_app(study, TOKEN, settings=settings)) as c:
            plain = await c.post("/api/sessions", json={"platform": "link", "pid": "pp1"})
            assert plain.status_code == 403 and "plain link" in plain.json()["error"]
            mturk = await c.post(
                "/api/sessions", json={"platform": "mturk", "pid": "W1", "session": "A1"}
            )
            assert mturk.status_code == 200

    _run(go())


def test_session_starts_are_rate_limited_per_client_and_for_everyone(study):
    # refills too slow to matter during the test (a token every 10 minutes or more)
    settings = ServeSettings(
        starts_per_client=2, client_refill_s=600, starts_burst=3, starts_per_s=0.001
    )
    app = create_app(study, TOKEN, settings=settings)

    async def go():
        async with _client(app, "10.0.0.1") as one, _client(app, "10.0.0.2") as two:
            starts = [
                await one.post("/api/sessions", json={"platform": "link", "pid": f"r{i}"})
                for i in range(3)
            ]
            assert [r.status_code for r in starts] == [200, 200, 429]
            assert "in the queue" in starts[2].json()["error"]
            assert f"about {starts[2].headers['retry-after']} s" in starts[2].json()["error"]
            assert int(starts[2].headers["retry-after"]) >= 1
            other = [
                await two.post("/api/sessions", json={"platform": "link", "pid": f"q{i}"})
                for i in range(2)
            ]  # another client gets one more start: then everyone's burst is spent
            assert [r.status_code for r in other] == [200, 429]
            bots = await two.post(
                "/api/sessions",
                json={"platform": "bot", "pid": "b0", "bot_token": bot_token(study)},
            )
            assert bots.status_code == 200  # simulated participants are not limited

    _run(go())


def test_the_study_keeps_a_bounded_number_of_comments(make_study, monkeypatch):
    monkeypatch.setattr(comments, "MAX_STUDY_COMMENTS", 2)
    study = make_study()

    async def go():
        async with _client(create_app(study, TOKEN)) as c:
            codes = []
            for i in range(3):
                s = (
                    await c.post("/api/sessions", json={"platform": "link", "pid": f"c{i}"})
                ).json()
                r = await c.post(
                    f"/api/participants/{s['participant']}/comments",
                    json={"key": "k", "text": f"comment {i}"},
                    headers={"Authorization": f"Bearer {s['token']}"},
                )
                codes.append(r.status_code)
            assert codes == [200, 200, 409] and "all the comments" in r.json()["error"]

    _run(go())


def test_a_body_that_never_comes_is_answered_408(study, live_server):
    app = create_app(study, TOKEN, settings=ServeSettings(body_timeout_s=0.5))
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                b"POST /api/sessions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{}"
            )
            chunks = []
            while chunk := sock.recv(4096):  # the reply closes the connection
                chunks.append(chunk)
            reply = b"".join(chunks).decode()
    assert reply.startswith("HTTP/1.1 408") and '"error"' in reply and "did not arrive" in reply


def test_exported_cells_cannot_run_as_spreadsheet_formulas(make_study, tmp_path):
    from percalign.cli import main

    study = make_study()

    async def go():
        async with _client(create_app(study, TOKEN)) as c:
            body = {"platform": "prolific", "pid": "@formula", "study": "-1-1", "session": "=s"}
            r = await c.post("/api/sessions", json=body)
            assert r.status_code == 422  # '=' is no platform id character
            s = (await c.post("/api/sessions", json={**body, "session": "@s"})).json()
            auth = {"Authorization": f"Bearer {s['token']}"}
            url = f"/api/participants/{s['participant']}"
            t = (await c.get(f"{url}/trials/0", headers=auth)).json()
            await asyncio.sleep(s["min_display_ms"] / 1000)
            body = {"position": 0, "choice": 0, "shown": t["shown"]}
            assert (await c.post(f"{url}/answers", json=body, headers=auth)).status_code == 200
            return (
                await c.get("/api/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"})
            ).text

    served = list(csv.DictReader(io.StringIO(_run(go()))))
    out = tmp_path / "answers.csv"
    assert main(["survey", "export", str(study), "--out", str(out)]) == 0
    written = list(csv.DictReader(out.open()))
    for rows in (served, written):
        assert rows[0]["platform_study"] == "'-1-1" and rows[0]["platform_session"] == "'@s"
        assert rows[0]["choice"] == "0"  # numbers stay numbers
    assert written[0]["platform_pid"] == "'@formula"
