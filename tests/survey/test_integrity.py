"""A survey that cannot be gamed or misread: completion codes only for a finished
participant's own outcome, answers only after their trial was on screen, the target's side
balanced within every participant, and image URLs that give nothing away (in-process API)."""

import asyncio
import io
import json
import re

import httpx
import pytest

from percalign.store.db import connect
from percalign.store.export import export_rows
from percalign.store.study import study_url
from percalign.survey.app import create_app
from percalign.survey.limits import ServeSettings

TOKEN = "integrity-admin"
CODES = {"completed": "C0MPLETE", "failed": "FA1LED"}


@pytest.fixture(scope="module")
def study(make_study):
    # 10 trials each: 8 regular + 2 catch
    return make_study("--trials-per-participant", "10", "--catch-rate", "0.2")


def _run(coro):
    return asyncio.run(coro)


def _client(study, codes=None, **kw):
    app = create_app(study, TOKEN, completion_codes=codes, **kw)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _images(c, trial):
    """The bytes of the query and of each candidate (what a script could compare)."""
    query = (await c.get(trial["query"])).content
    return query, [(await c.get(u)).content for u in trial["candidates"]]


def _pixels(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.tobytes()


async def _sensible(c, trial):
    """An attentive answer: the image that looks the same on catch trials, else the first."""
    query, cands = await _images(c, trial)
    looks = [_pixels(x) for x in cands]
    return looks.index(_pixels(query)) if _pixels(query) in looks else 0


async def _wrong(c, trial):
    return 1 - await _sensible(c, trial)


async def _left(_c, _trial):
    return 0


async def _take_part(c, pid, pick, replies=None, stop_before_last=False, **extra):
    """Answer every trial with ``pick`` at a human pace; returns the session and last reply.

    Every response body is appended to ``replies``.
    """
    replies = [] if replies is None else replies
    body = {"platform": "prolific", "pid": pid, "study": "ST", "session": f"se-{pid}", **extra}
    r = await c.post("/api/sessions", json=body)
    assert r.status_code == 200, r.text
    session = r.json()
    replies.append(r.text)
    auth = {"Authorization": f"Bearer {session['token']}"}
    wait = session.get("min_display_ms", 0) / 1000
    pos, total, last = session["next"], session["total"], None
    while pos < total - (1 if stop_before_last else 0):
        t = await c.get(f"/api/participants/{session['participant']}/trials/{pos}", headers=auth)
        replies.append(t.text)
        trial = t.json()
        choice = await pick(c, trial)
        await asyncio.sleep(wait)
        a = await c.post(
            f"/api/participants/{session['participant']}/answers",
            json={"position": pos, "choice": choice, "rt_ms": 900, "shown": trial.get("shown")},
            headers=auth,
        )
        assert a.status_code == 200, a.text
        replies.append(a.text)
        last = a.json()
        pos = total if last["done"] else last["next"]
    return session, last


def test_no_page_or_reply_holds_a_code_before_the_last_answer_is_acknowledged(study):
    async def go():
        async with _client(study, CODES) as c:
            page = await c.get("/", params={"PROLIFIC_PID": "early", "STUDY_ID": "ST"})
            assert page.status_code == 200
            replies = [page.text]
            session, _ = await _take_part(c, "early", _sensible, replies, stop_before_last=True)
            for text in replies:
                assert CODES["completed"] not in text and CODES["failed"] not in text
            auth = {"Authorization": f"Bearer {session['token']}"}
            pos = session["total"] - 1
            url = f"/api/participants/{session['participant']}"
            trial = (await c.get(f"{url}/trials/{pos}", headers=auth)).json()
            await asyncio.sleep(session["min_display_ms"] / 1000)
            body = {"position": pos, "choice": await _sensible(c, trial), "shown": trial["shown"]}
            last = (await c.post(f"{url}/answers", json=body, headers=auth)).json()
            assert last["done"] and last["outcome"] == "completed"
            assert last["completion_code"] == CODES["completed"]

    _run(go())


@pytest.mark.parametrize("codes", [CODES, {"completed": CODES["completed"]}])
def test_a_participant_who_failed_the_checks_never_gets_the_completed_code(study, codes):
    async def go():
        async with _client(study, codes) as c:
            name = f"careless-{len(codes)}"
            _, last = await _take_part(c, name, _wrong)
            assert last["outcome"] == "failed_attention"
            assert last["completion_code"] == codes.get("failed")  # None when not configured
            # reopening the link, and resending the last answer, change nothing
            params = {"PROLIFIC_PID": name, "STUDY_ID": "ST", "SESSION_ID": f"se-{name}"}
            page = await c.get("/", params=params)
            again = await c.post(
                "/api/sessions",
                json={"platform": "prolific", "pid": name, "study": "ST", "session": f"se-{name}"},
            )
            for text in (page.text, again.text):
                assert codes["completed"] not in text
            assert again.json()["done"] and again.json()["outcome"] == "failed_attention"
            assert again.json()["completion_code"] == codes.get("failed")

    _run(go())


def test_an_answer_sooner_than_the_minimum_display_time_is_refused(study):
    async def go():
        async with _client(study) as c:
            r = await c.post("/api/sessions", json={"platform": "link", "pid": "hasty"})
            s = r.json()
            auth = {"Authorization": f"Bearer {s['token']}"}
            url = f"/api/participants/{s['participant']}"
            trial = (await c.get(f"{url}/trials/0", headers=auth)).json()
            body = {"position": 0, "choice": 0, "shown": trial.get("shown")}
            hasty = await c.post(f"{url}/answers", json=body, headers=auth)
            assert hasty.status_code == 409 and "a choice counts after" in hasty.json()["error"]
            unseen = await c.post(f"{url}/answers", json={"position": 0, "choice": 0}, headers=auth)
            assert unseen.status_code == 409 and "'shown'" in unseen.json()["error"]
            forged = await c.post(
                f"{url}/answers", json={**body, "shown": "1." + "0" * 32}, headers=auth
            )
            assert forged.status_code == 409
            assert s["min_display_ms"] >= 100
            await asyncio.sleep(s["min_display_ms"] / 1000)
            ok = await c.post(f"{url}/answers", json=body, headers=auth)
            assert ok.status_code == 200 and not ok.json()["duplicate"]
            return s["participant"], s["min_display_ms"]

    me, wait_ms = _run(go())
    engine = connect(study_url(study))
    rows = [r for r in export_rows(engine) if r["participant"] == me]
    engine.dispose()
    assert len(rows) == 1 and rows[0]["server_rt_ms"] >= wait_ms  # by the server's clock


def test_a_participant_who_always_picks_the_left_image_scores_chance(make_study):
    study = make_study("--trials-per-participant", "10", "--catch-rate", "0.2")

    async def go():
        async with _client(study, settings=ServeSettings(starts_per_client=12)) as c:
            names = [f"lefty-{i}" for i in range(12)]
            sessions = await asyncio.gather(*(_take_part(c, n, _left) for n in names))
            return {s["participant"] for s, _ in sessions}

    ids = _run(go())
    engine = connect(study_url(study))
    rows = [r for r in export_rows(engine) if r["participant"] in ids]
    engine.dispose()
    assert len(rows) == 12 * 10
    for pid in ids:
        mine = [r["correct"] for r in rows if r["participant"] == pid]
        assert abs(sum(mine) / len(mine) - 0.5) <= 0.1, mine


def test_image_urls_do_not_give_catch_trials_away(study):
    async def go():
        async with _client(study) as c:
            replies = []
            await _take_part(c, "url-reader", _sensible, replies)
            return replies

    trials = [t for t in map(json.loads, _run(go())) if "candidates" in t]
    assert len(trials) == 10
    urls = [u for t in trials for u in (t["query"], *t["candidates"])]
    assert len(set(urls)) == len(urls)  # no URL shows twice, so none matches another
    assert not any(re.search(r"[0-9a-f]{64}", u) for u in urls)  # no content hash in sight


async def _right(_c, trial):
    return len(trial["candidates"]) - 1


@pytest.mark.parametrize("pick", [_left, _right], ids=["always-left", "always-right"])
def test_a_one_side_clicker_gets_the_failed_code_in_every_slot(make_study, pick):
    study = make_study("--trials-per-participant", "10", "--catch-rate", "0.2")
    slots = json.loads((study / "plan.json").read_text())["settings"]["slots"]

    async def go():
        async with _client(study, CODES, settings=ServeSettings(starts_per_client=20)) as c:
            names = [f"side-{pick.__name__}-{i}" for i in range(2 * slots)]
            finished = await asyncio.gather(*(_take_part(c, n, pick) for n in names))
            auth = {"Authorization": f"Bearer {TOKEN}"}
            people = (await c.get("/api/admin/participants", headers=auth)).json()
            return finished, {p["slot"] for p in people["participants"]}

    finished, used = _run(go())
    assert len(used) == slots >= 2  # every slot was taken
    for _, last in finished:
        assert last["outcome"] == "failed_attention"
        assert last["completion_code"] == CODES["failed"]


def test_a_catch_image_looks_like_its_twin_but_shares_no_bytes_or_etag(study):
    """A script comparing strings (the embedded data: URLs, the files, their ETags) cannot
    spot a catch trial; only looking at the pixels can."""

    async def go():
        async with _client(study) as c:
            replies = []
            await _take_part(c, "string-bot", _sensible, replies)
            found = 0
            for t in map(json.loads, replies):
                if "candidates" not in t:
                    continue
                query = await c.get(t["query"])
                cands = [await c.get(u) for u in t["candidates"]]
                same = [x for x in cands if _pixels(x.content) == _pixels(query.content)]
                if not same:
                    continue
                found += 1
                (twin,) = same
                assert twin.content != query.content
                assert twin.headers.get("etag") != query.headers.get("etag")
                if t.get("embedded"):
                    assert len(set(t["embedded"])) == len(t["embedded"])
            return found

    assert _run(go()) == 2  # the study's 2 catch trials


def test_each_answer_records_its_page_version_and_a_page_from_before_a_text_change_is_refused(
    make_study,
):
    import html

    from percalign.store.sessions import SurveyStore

    study = make_study()

    def version_of(page):
        data = re.search(r'data-survey="([^"]*)"', page).group(1)
        return json.loads(html.unescape(data))["version"]

    async def answer_first(c, pid, version):
        s = (await c.post("/api/sessions", json={"platform": "link", "pid": pid})).json()
        auth = {"Authorization": f"Bearer {s['token']}"}
        url = f"/api/participants/{s['participant']}"
        trial = (await c.get(f"{url}/trials/0", headers=auth)).json()
        await asyncio.sleep(s["min_display_ms"] / 1000)
        body = {"position": 0, "choice": 0, "shown": trial["shown"], "version": version}
        return await c.post(f"{url}/answers", json=body, headers=auth)

    async def before():
        async with _client(study) as c:
            old = version_of((await c.get("/", params={"pid": "v1"})).text)
            assert (await answer_first(c, "v1", old)).status_code == 200
            return old

    old = _run(before())
    engine = connect(study_url(study))
    store = SurveyStore(engine)
    texts = store.meta("texts")
    store.set_meta("texts", {**texts, "instructions": "Pick the image most like the top one."})
    engine.dispose()

    async def after():
        async with _client(study) as c:  # the service restarted with the new texts
            new = version_of((await c.get("/", params={"pid": "v2"})).text)
            assert new != old
            stale = await answer_first(c, "v2", old)
            assert stale.status_code == 409 and stale.json()["reload"] is True
            assert "reload the page" in stale.json()["error"]
            assert (await answer_first(c, "v3", new)).status_code == 200
            return new

    new = _run(after())
    engine = connect(study_url(study))
    rows = {r["platform_pid"]: r["page_version"] for r in export_rows(engine)}
    engine.dispose()
    assert rows == {"v1": old, "v3": new}
