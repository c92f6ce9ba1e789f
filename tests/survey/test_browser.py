"""A participant in a real browser: Debian's Chromium driven by Playwright.

Arrives with Prolific parameters, answers by keyboard, reloads midway and resumes, finishes,
and lands on the completion redirect; every answer is in the database exactly once.
"""

import shutil

import pytest

from percalign.store.db import connect
from percalign.store.sessions import export_rows
from percalign.store.study import study_url
from percalign.survey.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def live(make_study, live_server):
    study = make_study()
    with live_server(create_app(study, "tok", completion_codes={"completed": "DONE42"})) as url:
        yield study, url


@pytest.mark.slow
def test_participant_answers_by_keyboard_reloads_resumes_and_completes(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    study, url = live
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        completed = []
        page.route(
            "https://app.prolific.com/**",
            lambda route: (
                completed.append(route.request.url),
                route.fulfill(status=200, content_type="text/html", body="<p>Prolific</p>"),
            ),
        )
        page.goto(f"{url}/?PROLIFIC_PID=e2e-participant&STUDY_ID=st1&SESSION_ID=se1")
        page.screenshot(path=str(tmp_path / "consent.png"))
        assert "no right or" in page.inner_text("#consentText")
        page.click("#agree")
        page.click("#begin")
        # the page's CSP forbids eval, so waits go through locators, not wait_for_function
        for n, key in enumerate(["f", "j"]):  # two practice trials with feedback, not stored
            expect(page.locator("#count")).to_have_text(f"Practice {n + 1} of 2.")
            page.keyboard.press(key)
            expect(page.locator("#feedback")).not_to_have_text("")

        def answer(n: int, key: str) -> None:
            expect(page.locator("#count")).to_have_text(f"Trial {n + 1} of 6.")
            page.keyboard.press(key)

        for n, key in enumerate(["f", "j", "ArrowLeft"]):
            answer(n, key)
        expect(page.locator("#bar")).to_have_js_property("value", 3)
        page.screenshot(path=str(tmp_path / "trial.png"))
        page.reload()  # the participant reloads midway
        page.click("#agree")
        page.click("#begin")
        for n, key in zip(range(3, 6), ["j", "f", "ArrowRight"], strict=True):
            answer(n, key)
        page.wait_for_url("https://app.prolific.com/**")
        browser.close()
    assert completed and "cc=DONE42" in completed[0]
    engine = connect(study_url(study))
    rows = [r for r in export_rows(engine) if r["platform_pid"] == "e2e-participant"]
    engine.dispose()
    assert [r["trial"] for r in rows] == list(range(6))  # each answer once, in order
    assert {r["platform_study"] for r in rows} == {"st1"}
    assert all(r["rt_ms"] > 0 for r in rows)
