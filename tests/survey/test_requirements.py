"""Participant requirements: a device that lacks the window, pointer or browser a study
declared is told so before consent, with the platform's next step, and counted, never stored
as a participant."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from percalign.cli import main
from percalign.errors import ConfigError
from percalign.store.study import bot_token
from percalign.survey.app import create_app
from percalign.survey.requirements import Requirements, browser_of, parse_browsers

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
OLD_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 Firefox/102.0"
DESK = {"width": 1280, "height": 800, "pointer": "mouse"}
PHONE = {"width": 375, "height": 667, "pointer": "touch"}
ADMIN = {"Authorization": "Bearer tok"}


@pytest.fixture(scope="module")
def study(make_study):
    return make_study(
        "--require-viewport", "800x600", "--require-pointer", "mouse",
        "--require-browser", "chrome>=110,firefox>=115",
    )  # fmt: skip


def _client(study, agent):
    app = create_app(study, "tok")
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"User-Agent": agent}
    )


def test_a_device_that_lacks_the_requirements_is_told_and_counted_not_stored(study):
    async def go():
        async with _client(study, OLD_FIREFOX) as phone, _client(study, CHROME) as desk:
            page = await phone.get("/", params={"PROLIFIC_PID": "p1", "STUDY_ID": "S"})
            assert "min_width" in page.text  # the page checks before consent
            body = {"platform": "prolific", "device": PHONE}
            r = (await phone.post("/api/checks", json=body)).json()
            assert not r["ok"] and "return the study on Prolific" in r["next_step"]
            assert any("800 px wide" in x for x in r["lacks"])
            assert any("mouse" in x for x in r["lacks"])
            assert any("firefox 115 or newer" in x for x in r["lacks"])
            start = {"platform": "prolific", "pid": "p1", "study": "S", "device": PHONE}
            refused = await phone.post("/api/sessions", json=start)
            assert refused.status_code == 403
            assert "This study needs" in refused.json()["error"]
            assert "return the study on Prolific" in refused.json()["error"]
            ok = (await desk.post("/api/checks", json={**body, "device": DESK})).json()
            assert ok == {"ok": True, "lacks": [], "next_step": None}
            started = await desk.post("/api/sessions", json={**start, "pid": "p2", "device": DESK})
            assert started.status_code == 200
            bare = {k: v for k, v in start.items() if k != "device"}
            no_device = await desk.post("/api/sessions", json={**bare, "pid": "p3"})
            assert no_device.status_code == 403  # a client that skips the check
            bot = {"platform": "bot", "pid": "b", "bot_token": bot_token(study)}
            assert (await phone.post("/api/sessions", json=bot)).status_code == 200
            return (await desk.get("/api/admin/progress", headers=ADMIN)).json()

    progress = asyncio.run(go())
    assert progress["started"] == 2  # p2 and the bot: nobody screened out is stored
    # phone check and start: width, pointer, browser; no device: width, height, pointer
    assert progress["screened_out"] == {"browser": 2, "pointer": 3, "width": 3, "height": 1}


def test_requirements_are_checked_when_declared():
    assert browser_of("curl/8.0") == (None, None)
    assert browser_of("Mozilla/5.0 Chrome/120.0 Safari/537.36 Edg/120.0")[0] == "edge"
    assert Requirements().any is False
    assert Requirements(browsers={"safari": 0}).unmet(1, 1, "touch", CHROME) == {
        "browser": "one of these browsers: safari"
    }
    with pytest.raises(ConfigError, match="Unknown requirement"):
        Requirements.from_mapping({"min_widht": 800})
    with pytest.raises(ConfigError, match="'pointer' parameter"):
        Requirements(pointer="pen")
    with pytest.raises(ConfigError, match="'browsers' parameter"):
        Requirements(browsers={"netscape": 4})
    with pytest.raises(ConfigError, match="NAME>=VERSION"):
        parse_browsers("chrome>110")


def test_a_bad_viewport_requirement_is_one_line(make_study, tmp_path, capsys, survey_run):
    argv = ["survey", "build", str(tmp_path / "s"), "--runs", str(survey_run)]
    assert main([*argv, "--require-viewport", "wide"]) == 1
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
