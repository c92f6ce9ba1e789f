"""A participant in a real browser: Debian's Chromium driven by Playwright.

Arrives with Prolific parameters, answers by keyboard, reloads midway (past a leave-page
prompt) and resumes at the trial, finishes, and lands on the completion redirect; every
answer is in the database exactly once. Double clicks, double taps and held keys answer one
trial; the page fits a phone; refusals show where the participant is; a failed image load is
retried before the trial shows.
"""

import json
import re
import shutil

import pytest

from percalign.store.db import connect
from percalign.store.export import export_rows
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


def _ready(page):
    """Wait until the trial on screen takes a choice (its minimum display time is over)."""
    from playwright.sync_api import expect

    expect(page.locator("#task")).to_have_class(re.compile(r"\bready\b"))


def _practice(page, press):
    """Go through the two practice trials, answering each with ``press()``."""
    from playwright.sync_api import expect

    for n in range(2):
        expect(page.locator("#count")).to_have_text(f"Practice {n + 1} of 2.")
        _ready(page)
        press()
        expect(page.locator("#feedback")).not_to_have_text("")


def _settled(act, *args):
    """``act(*args)`` once the selection the page moved by itself has been on screen a
    moment (sooner, the page takes an input as the second half of a double one)."""
    import time

    time.sleep(0.35)
    act(*args)


def _practice_screen(page, select, press):
    """The practice matching screen: match each copy below with its original on top (same
    picture), then submit; the page checks and moves on to the real screens."""
    from playwright.sync_api import expect

    expect(page.locator("#count")).to_have_text("Practice 1 of 1.")
    _ready(page)
    tops = [img.get_attribute("src") for img in page.locator("#targets img").all()]
    for i, img in enumerate(page.locator("#iris img").all()):
        select(i)
        _settled(press, str(tops.index(img.get_attribute("src")) + 1))
    page.click("#submitScreen")
    expect(page.locator("#feedback")).to_contain_text("Right: each copy")


def _stored(study, pid):
    engine = connect(study_url(study))
    rows = [(r["trial"], r["choice"]) for r in export_rows(engine) if r["platform_pid"] == pid]
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def live(make_study, live_server):
    # no catch trials: these participants answer by fixed keys and must finish as completed
    # (the attention rules have tests of their own, and the done page's test below)
    study = make_study("--catch-rate", "0")
    with live_server(create_app(study, "tok", completion_codes={"completed": "DONE42"})) as url:
        yield study, url


@pytest.mark.slow
def test_participant_answers_by_keyboard_reloads_resumes_and_completes(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    study, url = live
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.type), d.accept()))
        completed = []
        page.route(
            "https://app.prolific.com/**",
            lambda route: (
                completed.append(route.request.url),
                route.fulfill(status=200, content_type="text/html", body="<p>Prolific</p>"),
            ),
        )
        fetched = []  # trial GETs: one per page load, the rest come with the answers' replies
        page.on("request", lambda r: "/trials/" in r.url and fetched.append(r.url))
        page.goto(f"{url}/?PROLIFIC_PID=e2e-participant&STUDY_ID=st1&SESSION_ID=se1")
        page.screenshot(path=str(tmp_path / "consent.png"))
        assert "no right or" in page.inner_text("#consentText")
        page.click("#agree")
        page.click("#begin")
        # the page's CSP forbids eval, so waits go through locators, not wait_for_function
        _practice(page, lambda: page.keyboard.press("f"))  # with feedback, not stored

        def answer(n: int, key: str) -> None:
            expect(page.locator("#count")).to_have_text(f"Trial {n + 1} of 6.")
            _ready(page)
            page.keyboard.press(key)

        for n, key in enumerate(["f", "j", "ArrowLeft"]):
            answer(n, key)
        expect(page.locator("#bar")).to_have_js_property("value", 3)
        page.screenshot(path=str(tmp_path / "trial.png"))
        page.reload()  # the participant reloads midway: asked first, then back at the trial
        assert dialogs == ["beforeunload"]
        for n, key in zip(range(3, 6), ["j", "f", "ArrowRight"], strict=True):
            answer(n, key)
        page.wait_for_url("https://app.prolific.com/**")
        browser.close()
    assert completed and "cc=DONE42" in completed[0]
    assert [u.rsplit("/", 1)[1] for u in fetched] == ["0", "3"]
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
        page.on(
            "dialog",  # leaving the study mid-way asks first: leave; any other is an attack
            lambda d: (
                d.accept() if d.type == "beforeunload" else (dialogs.append(d.message), d.dismiss())
            ),
        )
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
        _practice(page, lambda: page.keyboard.press("j"))
        expect(page.locator("#count")).to_have_text("Trial 1 of 6.")
        _ready(page)
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
    assert _stored(study, "patient-browser") == [(0, 1)]


def _browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def _to_first_trial(page, url, pid):
    from playwright.sync_api import expect

    page.goto(f"{url}/?pid={pid}")
    page.click("#agree")
    page.click("#begin")
    _practice(page, lambda: page.keyboard.press("f"))
    expect(page.locator("#count")).to_have_text("Trial 1 of 6.")
    _ready(page)


@pytest.mark.slow
def test_a_double_click_answers_only_the_trial_on_screen(live):
    from playwright.sync_api import expect, sync_playwright

    study, url = live
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page()
        _to_first_trial(page, url, "double-clicker")
        box = page.locator("#cands img").first.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(x, y)
        page.wait_for_timeout(150)  # a human double click: the second press lands on trial 2
        page.mouse.click(x, y)
        expect(page.locator("#count")).to_have_text("Trial 2 of 6.")
        page.wait_for_timeout(1000)
        expect(page.locator("#count")).to_have_text("Trial 2 of 6.")
        browser.close()
    assert _stored(study, "double-clicker") == [(0, 0)]


@pytest.mark.slow
def test_a_held_key_answers_only_the_trial_on_screen(live):
    from playwright.sync_api import expect, sync_playwright

    study, url = live
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page()
        _to_first_trial(page, url, "key-holder")
        page.keyboard.down("j")
        for _ in range(12):  # the key is held: the browser repeats it every 50 ms
            page.wait_for_timeout(50)
            page.keyboard.down("j")
        page.keyboard.up("j")
        expect(page.locator("#count")).to_have_text("Trial 2 of 6.")
        page.wait_for_timeout(1000)
        expect(page.locator("#count")).to_have_text("Trial 2 of 6.")
        browser.close()
    assert _stored(study, "key-holder") == [(0, 1)]


@pytest.mark.slow
def test_the_page_fits_a_phone_speaks_of_taps_and_a_double_tap_answers_once(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    study, url = live
    with sync_playwright() as pw:
        browser = _browser(pw)
        context = browser.new_context(
            viewport={"width": 375, "height": 667}, has_touch=True, is_mobile=True
        )
        page = context.new_page()
        page.goto(f"{url}/?pid=phone-user")
        page.tap("#agree")
        page.tap("#begin")
        _practice(page, lambda: page.tap("#cands img >> nth=0"))
        expect(page.locator("#count")).to_have_text("Trial 1 of 6.")
        _ready(page)
        page.screenshot(path=str(tmp_path / "phone.png"))
        boxes = [page.locator("#query").bounding_box()] + [
            page.locator("#cands img").nth(i).bounding_box() for i in range(2)
        ]
        for box in boxes:  # every image whole on screen
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["width"] >= 100
        how = page.inner_text("#prompt")
        assert "Tap" in how and "press" not in how
        page.tap("#cands img >> nth=1")
        page.wait_for_timeout(150)
        page.locator("#cands img").nth(1).tap(force=True)  # the second tap of a double tap
        expect(page.locator("#count")).to_have_text("Trial 2 of 6.")
        page.wait_for_timeout(1000)
        expect(page.locator("#count")).to_have_text("Trial 2 of 6.")
        browser.close()
    assert _stored(study, "phone-user") == [(0, 1)]


@pytest.mark.slow
def test_a_refusal_at_begin_is_shown_on_the_page_the_participant_is_on(live):
    import httpx
    from playwright.sync_api import expect, sync_playwright

    _, url = live
    first = {"platform": "prolific", "pid": "comes-twice", "study": "st", "session": "one"}
    assert httpx.post(f"{url}/api/sessions", json=first).status_code == 200
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page()
        page.goto(f"{url}/?PROLIFIC_PID=comes-twice&STUDY_ID=st&SESSION_ID=two")
        page.click("#agree")
        page.click("#begin")
        expect(page.locator("#status")).to_be_visible()
        expect(page.locator("#status")).to_contain_text("already took part")
        expect(page.locator("#status")).to_contain_text("return the study on Prolific")
        expect(page.locator("#instructions")).to_be_visible()
        browser.close()


@pytest.mark.slow
def test_a_failed_image_load_is_retried_before_the_trial_shows(live):
    from playwright.sync_api import expect, sync_playwright

    _, url = live
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page()
        failed = []

        def flaky(route):
            path = route.request.url.split("?")[0]
            if len(failed) < 2 and path in (failed or [path]):  # one image fails twice
                failed.append(path)
                route.fulfill(status=503, body="busy")
            else:
                route.continue_()

        page.route(re.compile(r"/(stimuli|images)/"), flaky)
        page.goto(f"{url}/?pid=flaky-network")
        page.click("#agree")
        page.click("#begin")
        expect(page.locator("#count")).to_have_text("Practice 1 of 2.")
        shown = page.locator("#query, #cands img")
        assert len(failed) == 2 and shown.count() == 3
        for i in range(3):
            assert shown.nth(i).element_handle().get_property("naturalWidth").json_value() > 0
        browser.close()


@pytest.mark.slow
def test_a_stale_second_tab_is_told_to_continue_and_moves_to_the_current_trial(live):
    from playwright.sync_api import expect, sync_playwright

    study, url = live
    with sync_playwright() as pw:
        browser = _browser(pw)
        context = browser.new_context()
        first = context.new_page()
        _to_first_trial(first, url, "two-tabs")
        first.keyboard.press("f")  # trial 1 answered in the first tab
        expect(first.locator("#count")).to_have_text("Trial 2 of 6.")
        second = context.new_page()  # the same link in another tab: the same session
        second.goto(f"{url}/?pid=two-tabs")
        second.click("#agree")
        second.click("#begin")
        expect(second.locator("#count")).to_have_text("Trial 2 of 6.")
        _ready(first)
        first.keyboard.press("f")  # trial 2 answered in the first tab ...
        expect(first.locator("#count")).to_have_text("Trial 3 of 6.")
        _ready(second)
        second.keyboard.press("j")  # ... and differently in the stale second one
        expect(second.locator("#status")).to_contain_text("open in another tab")
        expect(second.locator("#status")).to_contain_text("trial 3 of 6")
        expect(second.locator("#count")).to_have_text("Trial 3 of 6.")
        _ready(second)
        second.keyboard.press("j")  # and it goes on from there
        expect(second.locator("#count")).to_have_text("Trial 4 of 6.")
        browser.close()
    assert _stored(study, "two-tabs") == [(0, 0), (1, 0), (2, 1)]


@pytest.mark.slow
def test_the_done_page_shows_the_code_as_text_or_says_what_to_do_without_one(
    make_study, live_server
):
    import sqlite3

    from playwright.sync_api import expect, sync_playwright

    from percalign.store.study import DB_FILE

    study = make_study("--catch-rate", "0.2", "--min-catch-accuracy", "1")
    app = create_app(study, "tok", completion_codes={"completed": "DONE42"})  # no failed code

    def catch_sides(pid):
        """{trial: correct display position} of the catch trials of this participant."""
        with sqlite3.connect(study / DB_FILE) as db:
            rows = db.execute(
                "select t.position, t.display_order from slot_trials t join participants p "
                "on p.slot = t.slot where p.platform_pid = ? and t.is_catch",
                (pid,),
            ).fetchall()
        return {pos: json.loads(order).index(0) for pos, order in rows}

    with live_server(app) as url, sync_playwright() as pw:
        browser = _browser(pw)
        for pid, attentive in (("attentive", True), ("inattentive", False)):
            page = browser.new_page()
            # a redirect that goes nowhere (204): the page stays, as when Prolific is down
            page.route("https://app.prolific.com/**", lambda route: route.fulfill(status=204))
            page.goto(f"{url}/?PROLIFIC_PID={pid}&STUDY_ID=st&SESSION_ID=s-{pid}")
            page.click("#agree")
            page.click("#begin")
            _practice(page, lambda page=page: page.keyboard.press("f"))
            catch = catch_sides(pid)
            assert catch
            for n in range(6):
                expect(page.locator("#count")).to_have_text(f"Trial {n + 1} of 6.")
                _ready(page)
                side = catch.get(n, 0) if attentive else 1 - catch.get(n, 1)
                page.keyboard.press("fj"[side])
            expect(page.locator("#done")).to_be_visible()
            if attentive:  # the redirect failed: the code is there to copy
                expect(page.locator("#code")).to_have_text("DONE42")
                expect(page.locator("#copy")).to_be_visible()
            else:
                expect(page.locator("#codeBox")).to_be_hidden()
                expect(page.locator("#doneNote")).to_contain_text("no completion code")
                expect(page.locator("#doneNote")).to_contain_text("message the researcher")
            assert page.locator("#done h2").inner_text() == "Thank you!"
            assert "Thank you" not in page.inner_text("#doneText")  # said once
            assert "DONE42" not in page.content() or attentive
            page.close()
        browser.close()


@pytest.mark.slow
def test_declining_consent_stores_nothing_and_returns_to_prolific_with_its_code(
    make_study, live_server
):
    from playwright.sync_api import expect, sync_playwright

    study = make_study()
    codes = {"completed": "DONE42", "no_consent": "NOPE77"}
    app = create_app(study, "tok", completion_codes=codes)
    with live_server(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        sent = []
        page.route(
            "https://app.prolific.com/**",
            lambda route: (
                sent.append(route.request.url),
                route.fulfill(status=200, content_type="text/html", body="<p>Prolific</p>"),
            ),
        )
        page.goto(f"{url}/?PROLIFIC_PID=declines&STUDY_ID=st1&SESSION_ID=se1")
        assert "NOPE77" not in page.content()
        expect(page.locator("#decline")).to_be_visible()
        page.click("#decline")
        page.wait_for_url("https://app.prolific.com/**")
        browser.close()
    assert sent and "cc=NOPE77" in sent[0]
    assert _stored(study, "declines") == []


@pytest.mark.slow
def test_a_matching_screen_by_keyboard_and_click_with_a_change_of_mind_and_a_reload(
    make_study, live_server
):
    """Two matching screens of 6 images and 3 targets: keys 1-3 and clicks assign, an
    assignment changes until the screen is submitted, a reload mid-screen keeps the
    assignments made so far, and every assignment is stored once."""
    from playwright.sync_api import expect, sync_playwright

    study = make_study(
        "--design", "clustering", "--k", "3", "--iris-per-target", "2",
        "--trials-per-participant", "2",
    )  # fmt: skip
    app = create_app(study, "tok", completion_codes={"completed": "MATCH1"})
    with live_server(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        page.on("dialog", lambda d: d.accept())
        page.route(
            "https://app.prolific.com/**",
            lambda route: route.fulfill(status=200, content_type="text/html", body="<p>P</p>"),
        )
        page.goto(f"{url}/?PROLIFIC_PID=matcher&STUDY_ID=st&SESSION_ID=se")
        expect(page.locator("#instructionText")).to_contain_text("numbered image on top")
        page.click("#agree")
        page.click("#begin")
        _practice_screen(page, lambda i: page.click(f"#iri{i} img"), page.keyboard.press)
        expect(page.locator("#count")).to_have_text("Trial 1 of 2.")
        _ready(page)
        label = lambda i: page.locator(f"#iri{i} p")  # noqa: E731
        target = lambda j: page.locator("#targets .target img").nth(j)  # noqa: E731
        for key in "123":  # by keyboard: each key assigns the selected image, then the next
            _settled(page.keyboard.press, key)
        page.click("#iri3 img")  # by click: an image, then its target
        target(1).click()
        _settled(target(2).click)  # the next open image (4), selected by itself, once seen
        expect(page.locator("#submitScreen")).to_be_disabled()
        page.click("#iri0 img")  # a change of mind
        page.keyboard.press("3")
        expect(label(0)).to_have_text("goes with 3")
        page.reload()  # mid-screen: the assignments so far come back
        expect(page.locator("#count")).to_have_text("Trial 1 of 2.")
        expect(label(0)).to_have_text("goes with 3")
        expect(label(4)).to_have_text("goes with 3")
        expect(label(5)).to_have_text("?")
        _ready(page)
        _settled(page.keyboard.press, "1")  # the one left open
        expect(page.locator("#submitScreen")).to_be_enabled()
        page.keyboard.press("Enter")
        expect(page.locator("#count")).to_have_text("Trial 2 of 2.")
        _ready(page)
        for key in "123123":
            _settled(page.keyboard.press, key)
        page.keyboard.press("ArrowLeft")  # from the last image back to the one before it

        page.keyboard.press("1")
        page.click("#submitScreen")
        page.wait_for_url("https://app.prolific.com/**")
        browser.close()
    assert _stored(study, "matcher") == list(enumerate([2, 1, 2, 1, 2, 0, 0, 1, 2, 0, 0, 2]))


def _on_screen(page, selector, width, height):
    """Every element matching ``selector`` is wholly inside the viewport."""
    boxes = [e.bounding_box() for e in page.locator(selector).all()]
    assert boxes
    for b in boxes:
        assert b["x"] >= 0 and b["y"] >= 0, (selector, b)
        assert b["x"] + b["width"] <= width + 0.5 and b["y"] + b["height"] <= height + 0.5, (
            selector,
            b,
            (width, height),
        )


@pytest.mark.slow
@pytest.mark.parametrize("size", [(375, 667), (667, 375)], ids=["portrait", "landscape"])
def test_a_matching_screen_on_a_phone_needs_no_scrolling_and_double_taps_assign_nothing_unseen(
    make_study, live_server, size
):
    """On a 375 x 667 phone, upright and on its side, the whole screen (prompt, targets,
    images, Submit) is in view for every assignment; a double tap on a target and a doubled
    number key assign the selected image only, never the one the page selects next."""
    from playwright.sync_api import expect, sync_playwright

    width, height = size
    study = make_study(
        "--design", "clustering", "--k", "3", "--iris-per-target", "3",
        "--trials-per-participant", "1", "--catch-rate", "0",
    )  # fmt: skip
    with live_server(create_app(study, "tok")) as url, sync_playwright() as pw:
        browser = _browser(pw)
        context = browser.new_context(
            viewport={"width": width, "height": height}, has_touch=True, is_mobile=True
        )
        page = context.new_page()
        page.goto(f"{url}/?pid=thumbs-{width}")
        page.tap("#agree")
        page.tap("#begin")
        _practice_screen(page, lambda i: page.tap(f"#iri{i} img"), page.keyboard.press)
        expect(page.locator("#count")).to_have_text("Trial 1 of 1.")
        _ready(page)
        label = lambda i: page.locator(f"#iri{i} p")  # noqa: E731
        target = page.locator("#targets .target img")
        n = page.locator("#iris .iri").count()
        assert n == 9
        for i in range(n):
            for part in ("#prompt", "#targets img", "#iris img", "#submitScreen"):
                _on_screen(page, part, width, height)
            page.tap(f"#iri{i} img")
            target.nth(1).tap()
            if i == 0:  # a double tap: the second tap lands 120 ms later on the same target
                page.wait_for_timeout(120)
                target.nth(1).tap(force=True)
                expect(label(1)).to_have_text("?")
            if i == 1:  # a doubled key
                page.keyboard.press("3")
                expect(label(2)).to_have_text("?")
            expect(label(i)).to_have_text("goes with 2")
        expect(page.locator("#submitScreen")).to_be_enabled()
        page.screenshot(path=str(study.parent / f"screen-{width}x{height}.png"))
        page.tap("#submitScreen")
        expect(page.locator("#done")).to_be_visible()
        browser.close()
    assert [c for _, c in _stored(study, f"thumbs-{width}")] == [1] * 9


@pytest.mark.slow
def test_a_two_choice_trial_fits_a_phone_on_its_side(live):
    from playwright.sync_api import expect, sync_playwright

    _, url = live
    with sync_playwright() as pw:
        browser = _browser(pw)
        context = browser.new_context(
            viewport={"width": 667, "height": 375}, has_touch=True, is_mobile=True
        )
        page = context.new_page()
        page.goto(f"{url}/?pid=sideways")
        page.tap("#agree")
        page.tap("#begin")
        expect(page.locator("#count")).to_have_text("Practice 1 of 2.")
        _ready(page)
        for part in ("#prompt", "#query", "#cands img"):
            _on_screen(page, part, 667, 375)
        browser.close()


@pytest.mark.slow
def test_a_queue_says_so_with_the_wait_and_a_slow_load_shows_a_cue(make_study, live_server):
    """Held by the start limit, a participant reads that they are in a queue and the expected
    wait, and gets in by themselves; while a trial's images are on their way, the page says
    that it is loading them."""
    import httpx
    from playwright.sync_api import expect, sync_playwright

    from percalign.survey.limits import ServeSettings

    study = make_study("--catch-rate", "0")
    settings = ServeSettings(starts_per_client=1, client_refill_s=4, embed_kb=0)
    with live_server(create_app(study, "tok", settings=settings)) as url, sync_playwright() as pw:
        assert httpx.post(f"{url}/api/sessions", json={"platform": "link", "pid": "first"})
        browser = _browser(pw)
        page = browser.new_page()
        held, holding = [], [True]  # image requests, answered only once the cue was seen
        page.route(
            "**/images/**",
            lambda route: held.append(route) if holding[0] else route.continue_(),
        )
        page.goto(f"{url}/?pid=second")
        page.click("#agree")
        page.click("#begin")
        expect(page.locator("#status")).to_contain_text("you are in the queue")
        expect(page.locator("#status")).to_contain_text(re.compile(r"about \d+ s"))
        _practice(page, lambda: page.keyboard.press("f"))
        expect(page.locator("#loadingCue")).to_be_visible()
        expect(page.locator("#loadingCue")).to_have_text("Loading the next images...")
        assert held
        holding[0] = False
        for route in held:
            route.continue_()
        expect(page.locator("#count")).to_have_text("Trial 1 of 6.")
        expect(page.locator("#loadingCue")).to_be_hidden()
        browser.close()


@pytest.mark.slow
def test_a_page_from_before_an_update_says_to_reload(live):
    """The page sends its version with each answer; told (409, reload) that it is out of date,
    it says that the choice was not saved and that a reload continues."""
    from playwright.sync_api import expect, sync_playwright

    _, url = live
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page()
        sent = []

        def outdated(route):
            sent.append(json.loads(route.request.post_data))
            route.fulfill(
                status=409,
                content_type="application/json",
                body=json.dumps(
                    {"error": "This study's page was updated since you opened it.", "reload": True}
                ),
            )

        page.route("**/answers", outdated)
        page.goto(f"{url}/?pid=old-tab")
        page.click("#agree")
        page.click("#begin")
        _practice(page, lambda: page.keyboard.press("f"))
        expect(page.locator("#count")).to_have_text("Trial 1 of 6.")
        _ready(page)
        page.keyboard.press("j")
        expect(page.locator("#status")).to_contain_text("Reload this page to continue")
        assert re.fullmatch(r"[0-9a-f]{16}", sent[0]["version"])
        browser.close()


@pytest.mark.slow
def test_a_phone_is_told_before_consent_when_the_study_needs_a_mouse(make_study, live_server):
    from playwright.sync_api import expect, sync_playwright

    study = make_study("--require-pointer", "mouse", "--require-viewport", "800x500")
    with live_server(create_app(study, "tok")) as url, sync_playwright() as pw:
        browser = _browser(pw)
        phone = browser.new_context(
            viewport={"width": 375, "height": 667}, has_touch=True, is_mobile=True
        ).new_page()
        phone.goto(f"{url}/?PROLIFIC_PID=on-phone&STUDY_ID=st&SESSION_ID=se")
        expect(phone.locator("#done")).to_be_visible()
        expect(phone.locator("#doneText")).to_contain_text("a mouse or trackpad")
        expect(phone.locator("#doneText")).to_contain_text("800 px wide")
        expect(phone.locator("#doneNote")).to_contain_text("return the study on Prolific")
        expect(phone.locator("#consent")).to_be_hidden()
        desk = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        desk.goto(f"{url}/?PROLIFIC_PID=at-desk&STUDY_ID=st&SESSION_ID=se")
        expect(desk.locator("#consent")).to_be_visible()
        desk.click("#agree")
        desk.click("#begin")
        expect(desk.locator("#count")).to_have_text("Practice 1 of 2.")
        browser.close()
