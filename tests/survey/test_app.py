"""The survey API in-process (httpx over ASGI) on a temporary SQLite study."""

import asyncio
import html
import io
import itertools
import json
import re
import zlib

import httpx
import pytest

from percalign.survey.app import create_app
from percalign.survey.pages import participant_page

TOKEN = "s3cret-admin"


@pytest.fixture(scope="module")
def study(make_study):
    return make_study("--catch-rate", "0.2", "--repeat-rate", "0.0")


async def _images(c, trial):
    """The bytes of a trial's query and candidates."""
    return (await c.get(trial["query"])).content, [
        (await c.get(u)).content for u in trial["candidates"]
    ]


def _pixels(data):
    """An image's pixels (a catch trial's top image has other bytes than its twin)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.tobytes()


async def _sensible(c, trial):
    """The answer an attentive participant gives: the identical image on catch trials."""
    query, cands = await _images(c, trial)
    looks = [_pixels(x) for x in cands]
    return looks.index(_pixels(query)) if _pixels(query) in looks else 0


def _clock():
    """A server clock that moves a second at every look: each trial is on screen long enough."""
    return itertools.count(1_700_000_000).__next__


def _run(coro):
    return asyncio.run(coro)


async def _client(study, **kw):
    app = create_app(study, TOKEN, completion_codes={"completed": "C0DE"}, clock=_clock(), **kw)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _join(c, **body):
    """Start a session; returns (participant id, auth headers, reply)."""
    r = await c.post("/api/sessions", json=body)
    assert r.status_code == 200, r.text
    reply = r.json()
    return reply["participant"], {"Authorization": f"Bearer {reply['token']}"}, reply


def test_a_participant_answers_everything_once_and_resumes(study):
    async def go():
        async with await _client(study) as c:
            page = await c.get(
                "/", params={"PROLIFIC_PID": "p1", "STUDY_ID": "s", "SESSION_ID": "x"}
            )
            assert page.status_code == 200 and "Image comparison study" in page.text
            pid, auth, r = await _join(c, platform="prolific", pid="p1")
            total = r["total"]
            assert r["next"] == 0 and total == 6 and not r["resumed"]
            sent = {}
            for pos in range(3):
                t = (await c.get(f"/api/participants/{pid}/trials/{pos}", headers=auth)).json()
                assert len(t["candidates"]) == 2
                img = await c.get(t["query"])
                assert img.status_code == 200 and img.headers["content-type"] == "image/png"
                sent[pos] = await _sensible(c, t)
                a = await c.post(
                    f"/api/participants/{pid}/answers",
                    json={"position": pos, "choice": sent[pos], "rt_ms": 800, "shown": t["shown"]},
                    headers=auth,
                )
                assert a.json()["next"] == pos + 1
            # a resend of an acknowledged answer (a retry after a lost reply) changes nothing
            again = await c.post(
                f"/api/participants/{pid}/answers",
                json={"position": 1, "choice": sent[1], "rt_ms": 5},
                headers=auth,
            )
            assert again.status_code == 200 and again.json()["duplicate"]
            assert again.json()["next"] == 3
            # the same platform participant comes back: same session, next unanswered trial
            _, _, back = await _join(c, platform="prolific", pid="p1")
            assert back["participant"] == pid and back["resumed"] and back["next"] == 3
            for pos in range(3, total):
                t = (await c.get(f"/api/participants/{pid}/trials/{pos}", headers=auth)).json()
                a = (
                    await c.post(
                        f"/api/participants/{pid}/answers",
                        json={
                            "position": pos,
                            "choice": await _sensible(c, t),
                            "shown": t["shown"],
                        },
                        headers=auth,
                    )
                ).json()
            assert a["done"] and a["completion_code"] == "C0DE" and a["next"] is None
            prog = (
                await c.get("/api/admin/progress", headers={"Authorization": f"Bearer {TOKEN}"})
            ).json()
            assert prog["completed"] == 1 and prog["answers"] == total

    _run(go())


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "message"),
    [
        (
            "post",
            "/api/participants/{pid}/answers",
            {"position": 3, "choice": 0},
            409,
            "Answer trial 1 first",
        ),
        (
            "post",
            "/api/participants/{pid}/answers",
            {"position": 0, "choice": 7},
            409,
            "'choice' must be",
        ),
        ("post", "/api/participants/{pid}/answers", {"position": "x"}, 422, "Invalid request"),
        (
            "post",
            "/api/participants/nobody/answers",
            {"position": 0, "choice": 0},
            422,
            "Invalid request: path.pid",
        ),
        (
            "post",
            "/api/sessions",
            {"platform": "link", "pid": "a", "study": "x\u0000y"},
            422,
            "study",
        ),
        ("post", "/api/sessions", {"platform": "link", "pid": "a<b>"}, 422, "pid"),
        ("get", "/api/participants/{pid}/trials/5", None, 409, "not answered yet"),
        ("get", "/api/participants/{pid}/trials/99", None, 404, "No trial at position 99"),
        ("get", "/stimuli/../../etc/passwd", None, 404, ""),
        ("get", "/api/admin/progress", None, 401, "Admin token"),
        ("post", "/api/sessions", {"platform": "prolific"}, 422, "Invalid request"),
        (
            "post",
            "/api/sessions",
            {"platform": "link", "pid": "a", "screen": {"w": "800", "h": True}},
            422,
            "a number is required",
        ),
        ("post", "/api/participants/{pid}/answers", {"position": 0, "choice": True}, 422, "number"),
        ("post", "/api/sessions", {"platform": "myspace", "pid": "a"}, 422, "Invalid request"),
    ],
)
def test_bad_requests_get_4xx_json(study, method, url, body, status, message):
    async def go():
        async with await _client(study) as c:
            pid, auth, _ = await _join(
                c, platform="link", pid=f"bad-{zlib.crc32(url.encode() + str(body).encode())}"
            )
            r = await getattr(c, method)(
                url.format(pid=pid),
                headers=auth,
                **({"json": body} if body is not None else {}),
            )
            assert r.status_code == status
            assert message in r.json()["error"]

    _run(go())


def test_oversized_bodies_wrong_tokens_missing_platform_ids_and_closing(study):
    async def go():
        async with await _client(study) as c:
            big = await c.post(
                "/api/sessions",
                content=b"{" + b" " * 20000 + b"}",
                headers={"content-type": "application/json"},
            )
            assert big.status_code == 413
            wrong = await c.get("/api/admin/progress", headers={"Authorization": "Bearer no"})
            assert wrong.status_code == 401
            missing = await c.get("/", params={"PROLIFIC_PID": ""})
            assert missing.status_code == 422 and "PROLIFIC_PID" in missing.json()["error"]
            hostile = await c.get("/", params={"PROLIFIC_PID": "<script>alert(1)</script>"})
            assert hostile.status_code == 422 and "<script>" not in hostile.text
            closed = await c.post("/api/admin/close", headers={"Authorization": f"Bearer {TOKEN}"})
            assert closed.json() == {"closed": True}
            late = await c.post("/api/sessions", json={"platform": "link", "pid": "late"})
            assert late.status_code == 403 and "closed" in late.json()["error"]

    _run(go())


def test_failed_attention_gets_its_own_code_mturk_submit_and_admin_export(study):
    from percalign.store.db import connect
    from percalign.store.sessions import SurveyStore
    from percalign.store.study import study_url

    SurveyStore(connect(study_url(study))).set_meta("closed", False)  # another test closed it

    async def go():
        app = create_app(
            study, TOKEN, completion_codes={"completed": "C0DE", "failed": "F41L"}, clock=_clock()
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            pid, auth, r = await _join(c, platform="mturk", pid="w1")
            total = r["total"]
            caught = False
            for pos in range(total):  # the wrong candidate everywhere: catch trials fail
                t = (await c.get(f"/api/participants/{pid}/trials/{pos}", headers=auth)).json()
                right = await _sensible(c, t)
                query, cands = await _images(c, t)
                caught |= _pixels(query) in [_pixels(x) for x in cands]
                a = (
                    await c.post(
                        f"/api/participants/{pid}/answers",
                        json={"position": pos, "choice": 1 - right, "shown": t["shown"]},
                        headers=auth,
                    )
                ).json()
            assert caught and a["done"]
            assert a["outcome"] == "failed_attention" and a["completion_code"] == "F41L"
            ok = await c.get(
                "/",
                params={
                    "workerId": "w2",
                    "assignmentId": "a2",
                    "hitId": "h",
                    "turkSubmitTo": "https://workersandbox.mturk.com",
                },
            )
            assert ok.status_code == 200
            assert "workersandbox.mturk.com/mturk/externalSubmit" in ok.text
            evil = await c.get(
                "/", params={"workerId": "w3", "turkSubmitTo": "https://evil.example"}
            )
            assert evil.status_code == 422 and "turkSubmitTo" in evil.json()["error"]
            export = await c.get(
                "/api/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            lines = export.text.splitlines()
            assert "platform_pid" in lines[0] and ",w1," not in export.text  # ids hashed
            assert (await c.get("/api/admin/export.csv")).status_code == 401
            page = await c.get("/admin")
            assert page.status_code == 200 and "Study admin" in page.text

    _run(go())


HOSTILE = "x\"'><img src=x onerror=alert(1)></body><script>alert(2)</script>"


def _page_data(text):
    """The data the participant page carries in its one escaped attribute."""
    found = re.search(r'<body data-survey="([^"]*)">', text)
    assert found, "the page carries its data in <body data-survey>"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize(
    "name", ["pid", "PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "hitId", "assignmentId"]
)
def test_participant_strings_never_reach_the_page_raw(study, name):
    async def go():
        async with await _client(study) as c:
            r = await c.get("/", params={name: HOSTILE})
            assert r.status_code == 422 and name in r.json()["error"]
            assert "<img" not in r.text and "<script>" not in r.text
            ok = await c.get("/", params={"pid": "plain-id_1"})
            assert ok.status_code == 200 and _page_data(ok.text)["params"]["pid"] == "plain-id_1"

    _run(go())


def test_page_data_is_escaped_so_no_string_can_close_the_attribute():
    data = {"pid": HOSTILE, "texts": {"consent": HOSTILE}}
    text, _ = participant_page(data)
    assert "<img" not in text and "alert(2)</script>" not in text
    assert _page_data(text) == data  # every character arrives, as data


def test_non_finite_numbers_are_refused(study):
    async def go():
        async with await _client(study) as c:
            pid, auth, _ = await _join(c, platform="link", pid="nan-sender")
            r = await c.post(
                f"/api/participants/{pid}/answers",
                content=b'{"position": 0, "choice": 0, "client_time": NaN}',
                headers={**auth, "content-type": "application/json"},
            )
            assert r.status_code == 422 and "client_time" in r.json()["error"]

    _run(go())


def test_small_images_travel_in_the_reply_as_the_same_bytes(study):
    """A trial carries its images as data: URLs (no image request), byte for byte the images
    its URLs serve; ``embed_kb=0`` leaves only the URLs."""
    import base64

    from percalign.survey.limits import ServeSettings

    async def go(settings):
        async with await _client(study, settings=settings) as c:
            pid, auth, _ = await _join(c, platform="link", pid=f"embed-{settings.embed_kb}")
            t = (await c.get(f"/api/participants/{pid}/trials/0", headers=auth)).json()
            a = await c.post(
                f"/api/participants/{pid}/answers",
                json={"position": 0, "choice": 0, "shown": t["shown"]},
                headers=auth,
            )
            return t, a.json()["trial"], await _images(c, t)

    t, carried, (query, cands) = _run(go(ServeSettings()))
    prefix = "data:image/png;base64,"
    assert t["embedded"] is not None and carried["embedded"] is not None
    assert all(u.startswith(prefix) for u in t["embedded"])
    decoded = [base64.b64decode(u.removeprefix(prefix)) for u in t["embedded"]]
    assert decoded == [query, *cands]
    t, carried, _ = _run(go(ServeSettings(embed_kb=0)))
    assert t["embedded"] is None and carried["embedded"] is None
