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


@pytest.mark.slow
def test_hostile_participant_text_is_shown_as_text_in_every_page(live):
    """XSS payloads from a participant, through the page's own "report a problem" box, end
    up on the admin page as plain text; checked with the CSP switched off, so escaping alone
    has to hold."""
    from playwright.sync_api import expect, sync_playwright

    _, url = live
    payload = '<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2</script>'
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_context(bypass_csp=True).new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{url}/?PROLIFIC_PID=xss-tester&STUDY_ID=st&SESSION_ID=se")
        page.click("#agree")
        page.click("#begin")
        expect(page.locator("#count")).to_have_text("Practice 1 of 2.")
        page.click("#report summary")
        page.fill("#comment", payload)
        page.click("#sendComment")
        expect(page.locator("#commentStatus")).to_have_text("Thank you, we got your message.")
        # a hostile platform id never reaches a page: the link is refused with JSON
        refused = page.goto(f"{url}/?PROLIFIC_PID=%3Cscript%3Ewindow.__xss%3D3%3C/script%3E")
        assert refused.status == 422 and refused.headers["content-type"] == "application/json"
        page.goto(f"{url}/admin")
        page.fill("#token", "tok")
        page.click("#load")
        expect(page.locator("#comments")).to_contain_text(payload)
        assert page.locator("#comments img, #comments script").count() == 0
        assert page.evaluate("window.__xss") is None and dialogs == []
        browser.close()


@pytest.mark.slow
def test_the_page_retries_through_a_locked_database_and_keeps_the_answer(live):
    import sqlite3

    from playwright.sync_api import expect, sync_playwright

    from percalign.store.study import DB_FILE

    study, url = live
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        page.goto(f"{url}/?pid=patient-browser")
        page.click("#agree")
        page.click("#begin")
        for n, key in enumerate(["f", "j"]):
            expect(page.locator("#count")).to_have_text(f"Practice {n + 1} of 2.")
            page.keyboard.press(key)
        expect(page.locator("#count")).to_have_text("Trial 1 of 6.")
        blocker = sqlite3.connect(study / DB_FILE, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # the database cannot take writes for a while
        try:
            page.keyboard.press("j")
            expect(page.locator("#status")).to_contain_text("retrying", timeout=20_000)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        expect(page.locator("#count")).to_have_text("Trial 2 of 6.", timeout=30_000)
        expect(page.locator("#status")).to_have_text("")
        browser.close()
    engine = connect(study_url(study))
    rows = [r for r in export_rows(engine) if r["platform_pid"] == "patient-browser"]
    engine.dispose()
    assert [(r["trial"], r["choice"]) for r in rows] == [(0, 1)]
