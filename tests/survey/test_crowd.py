"""A crowd's survey: one round trip per trial, and coverage that survives drop-outs."""

import asyncio
import json

import httpx
import pytest

from percalign.survey.app import create_app
from percalign.survey.limits import ServeSettings

TOKEN = "crowd-admin"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


class Clock:
    """A server clock the test moves: a second per look, plus whatever ``skip`` adds."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t

    def skip(self, minutes: float) -> None:
        self.t += minutes * 60


@pytest.fixture
def study(make_study):
    """A fresh study per test: 8 items, 2 judgments each, 6 trials per participant."""
    return make_study("--catch-rate", "0.0", "--repeat-rate", "0.0")


def _client(study, clock, **settings):
    app = create_app(
        study,
        TOKEN,
        completion_codes={"completed": "C0DE", "no_consent": "N0PE"},
        settings=ServeSettings(**settings),
        clock=clock,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _join(c, name):
    r = await c.post("/api/sessions", json={"platform": "prolific", "pid": name})
    assert r.status_code == 200, r.text
    s = r.json()
    return s, {"Authorization": f"Bearer {s['token']}"}


async def _answer(c, s, auth, t, choice=0):
    r = await c.post(
        f"/api/participants/{s['participant']}/answers",
        json={"position": t["position"], "choice": choice, "shown": t["shown"]},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _finish(c, s, auth, upto=None):
    """Answer from the session's next trial on, with only the trials the replies carry."""
    pid = s["participant"]
    t = (await c.get(f"/api/participants/{pid}/trials/{s['next']}", headers=auth)).json()
    a = None
    while t is not None and (upto is None or t["position"] < upto):
        a = await _answer(c, s, auth, t)
        t = a["trial"]
    return a


def test_an_answer_reply_carries_the_next_trial_so_a_trial_is_one_round_trip(study):
    async def go():
        async with _client(study, Clock()) as c:
            s, auth = await _join(c, "one-trip")
            pid = s["participant"]
            t = (await c.get(f"/api/participants/{pid}/trials/0", headers=auth)).json()
            a = await _answer(c, s, auth, t)
            nxt = a["trial"]
            assert nxt["position"] == a["next"] == 1 and nxt["total"] == s["total"]
            for url in (nxt["query"], *nxt["candidates"]):
                img = await c.get(url)
                assert img.status_code == 200 and img.headers["content-type"] == "image/png"
                assert "immutable" in img.headers["cache-control"]
            # the carried trial is the trial as a GET serves it, and its 'shown' is accepted
            got = (await c.get(f"/api/participants/{pid}/trials/1", headers=auth)).json()
            assert {k: v for k, v in got.items() if k != "shown"} == {
                k: v for k, v in nxt.items() if k != "shown"
            }
            # a resend of an acknowledged answer carries the next trial too (a lost reply)
            again = await _answer(c, s, auth, t)
            assert again["duplicate"] and again["trial"]["position"] == 1
            last = await _finish(c, s, auth)
            assert last["done"] and last["trial"] is None and last["completion_code"] == "C0DE"
            prog = (await c.get("/api/admin/progress", headers=ADMIN)).json()
            assert prog["answers"] == s["total"]

    asyncio.run(go())


def test_a_third_of_participants_abandon_and_every_item_still_gets_r_judgments(study):
    """Every third participant answers two trials and goes silent past --abandon-after: its
    slot goes to the next participant, so completed ones alone reach R per item (with the
    old least-used-of-everyone assignment the abandoned slot never gets a completion)."""

    async def go():
        clock = Clock()
        async with _client(study, clock, abandon_after_min=30) as c:
            cov = (await c.get("/api/admin/progress", headers=ADMIN)).json()["coverage"]
            assert cov["judgments_per_item"] == 2 and cov["participants_needed"] >= 1
            assert len(cov["items_short"]) == cov["items"]
            slots = len(json.loads((study / "plan.json").read_text())["slots"])
            gone, done, i = [], [], 0
            while cov["items_short"] and i < 4 * slots:
                s, auth = await _join(c, f"p{i}")
                if i % 3 == 0:
                    await _finish(c, s, auth, upto=2)
                    gone.append(s["participant"])
                    clock.skip(31)
                    table = (await c.get("/api/admin/participants", headers=ADMIN)).json()
                    status = {p["participant"]: p["status"] for p in table["participants"]}
                    assert status[s["participant"]] == "abandoned"
                else:
                    assert (await _finish(c, s, auth))["outcome"] == "completed"
                    done.append(s["participant"])
                cov = (await c.get("/api/admin/progress", headers=ADMIN)).json()["coverage"]
                i += 1
            assert cov["items_short"] == {} and cov["participants_needed"] == 0
            assert len(done) <= slots and len(gone) >= len(done) // 2
            prog = (await c.get("/api/admin/progress", headers=ADMIN)).json()
            assert prog["participants"]["abandoned"] == len(gone)
            assert prog["answers"] == 2 * len(gone) + sum(
                p["total"]
                for p in (await c.get("/api/admin/participants", headers=ADMIN)).json()[
                    "participants"
                ]
                if p["status"] == "completed"
            )
            # the abandoned answers are kept, and exported with their status
            export = (await c.get("/api/admin/export.csv", headers=ADMIN)).text
            assert export.count("abandoned") == 2 * len(gone)
            # an abandoned participant who comes back resumes its own trials
            back, auth = await _join(c, "p0")
            assert back["participant"] == gone[0] and back["resumed"] and back["next"] == 2
            last = await _finish(c, back, auth)
            assert last["done"] and last["outcome"] == "completed"

    asyncio.run(go())


def test_an_abandoned_session_that_returns_resumes_its_own_trials_or_is_told_why_not(study):
    """A session silent past --abandon-after gives up its slot; back later it resumes its
    own trials at the next unanswered one (the plan never changes, so they still exist),
    even once the study is closed and another participant took the slot; the same platform
    id in another platform session is told that it took part already."""

    async def go():
        clock = Clock()
        async with _client(study, clock, abandon_after_min=30) as c:
            r = await c.post(
                "/api/sessions", json={"platform": "prolific", "pid": "away", "session": "s1"}
            )
            s = r.json()
            auth = {"Authorization": f"Bearer {s['token']}"}
            await _finish(c, s, auth, upto=3)
            clock.skip(45)
            other, other_auth = await _join(c, "newcomer")  # takes the silent session's slot
            table = (await c.get("/api/admin/participants", headers=ADMIN)).json()
            rows = {p["participant"]: p for p in table["participants"]}
            assert rows[s["participant"]]["status"] == "abandoned"
            assert rows[other["participant"]]["slot"] == rows[s["participant"]]["slot"]
            assert (await c.post("/api/admin/close", headers=ADMIN)).json()["closed"]
            back = await c.post(
                "/api/sessions", json={"platform": "prolific", "pid": "away", "session": "s1"}
            )
            assert back.status_code == 200, back.text
            b = back.json()
            assert b["participant"] == s["participant"] and b["resumed"] and b["next"] == 3
            table = (await c.get("/api/admin/participants", headers=ADMIN)).json()
            rows = {p["participant"]: p for p in table["participants"]}
            assert rows[s["participant"]]["status"] == "active"
            assert (await _finish(c, b, auth))["outcome"] == "completed"
            assert (await _finish(c, other, other_auth))["outcome"] == "completed"
            again = await c.post(
                "/api/sessions", json={"platform": "prolific", "pid": "away", "session": "s2"}
            )
            assert again.status_code == 409 and "takes part once" in again.json()["error"]

    asyncio.run(go())


def test_a_session_that_never_answers_gives_up_its_slot_in_minutes(study):
    """Sessions started in a flood and never answered hold their slots for
    --unanswered-after minutes (5), not --abandon-after (30); one that answered keeps its
    slot; the one that left can still come back."""

    async def go():
        clock = Clock()
        async with _client(study, clock, abandon_after_min=30, unanswered_after_min=5) as c:
            slots = json.loads((study / "plan.json").read_text())["settings"]["slots"]
            idle = [await _join(c, f"idle-{i}") for i in range(slots)]
            busy, busy_auth = await _join(c, "busy")
            await _finish(c, busy, busy_auth, upto=1)
            clock.skip(6)
            newcomer, _ = await _join(c, "newcomer")
            table = (await c.get("/api/admin/participants", headers=ADMIN)).json()
            rows = {p["participant"]: p for p in table["participants"]}
            assert {rows[s["participant"]]["status"] for s, _ in idle} == {"abandoned"}
            assert rows[busy["participant"]]["status"] == "active"
            # the newcomer gets a slot no active session holds
            assert rows[newcomer["participant"]]["slot"] != rows[busy["participant"]]["slot"]
            back = await c.post("/api/sessions", json={"platform": "prolific", "pid": "idle-0"})
            assert back.status_code == 200 and back.json()["resumed"]

    asyncio.run(go())


def test_a_study_served_with_close_when_covered_closes_itself(study):
    async def go():
        async with _client(study, Clock(), close_when_covered=True) as c:
            slots = len(json.loads((study / "plan.json").read_text())["slots"])
            for i in range(slots):
                prog = (await c.get("/api/admin/progress", headers=ADMIN)).json()
                if prog["closed"]:
                    break
                assert prog["coverage"]["items_short"]  # open only while items are short
                s, auth = await _join(c, f"cover-{i}")
                await _finish(c, s, auth)
            prog = (await c.get("/api/admin/progress", headers=ADMIN)).json()
            assert prog["closed"] and prog["coverage"]["items_short"] == {}
            late = await c.post("/api/sessions", json={"platform": "prolific", "pid": "late"})
            assert late.status_code == 403 and "closed" in late.json()["error"]

    asyncio.run(go())


def test_declining_consent_stores_nothing_and_gets_the_no_consent_code(study):
    async def go():
        async with _client(study, Clock()) as c:
            page = await c.get("/", params={"PROLIFIC_PID": "nope", "STUDY_ID": "s"})
            assert "N0PE" not in page.text and 'id="decline"' in page.text
            r = await c.post("/api/declines", json={"platform": "prolific", "pid": "nope"})
            assert r.status_code == 200 and r.json() == {"completion_code": "N0PE"}
            prog = (await c.get("/api/admin/progress", headers=ADMIN)).json()
            assert prog["started"] == 0
            bad = await c.post("/api/declines", json={"platform": "prolific"})
            assert bad.status_code == 422 and "error" in bad.json()
        app = create_app(study, TOKEN, completion_codes={"completed": "C0DE"})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post("/api/declines", json={"platform": "prolific", "pid": "nope"})
            assert r.json() == {"completion_code": None}

    asyncio.run(go())
