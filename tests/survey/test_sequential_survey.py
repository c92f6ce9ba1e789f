"""A sequential survey through the real service: questions declared at build, looks taken as
participants finish, the study closed when its comparison is decided, every answer kept."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from percalign.cli import main
from percalign.store.study import bot_token, survey_summary
from percalign.survey.app import create_app


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Runs of two models (tiny-vgg, tiny-cnn) on the same 8 digits, 3 steps each."""
    runs = []
    for model in ("tiny-vgg", "tiny-cnn"):
        out = tmp_path_factory.mktemp("run") / model
        args = ["invert", "--model", model, "--images", "digits", "--n-images", "8"]
        assert main([*args, "--seeds", "super-noise,image", "--steps", "3", "--out", str(out)]) == 0
        runs.append(str(out))
    return runs


def _build(folder, runs, *options):
    args = ["survey", "build", str(folder), "--runs", *runs, "--include-invalid"]
    args += ["--trials-per-participant", "6", "--judgments-per-item", "2", *options]
    return main(args)


BAD = [
    (["--compare", "modle"], "Unknown condition column 'modle' in the runs. Did you mean 'model'?"),
    (["--compare", "model", "--budget", "4", "--look-every", "5"], "smaller than the first look"),
    (["--compare", "model", "--budget", "0"], "needs a budget"),
    (
        ["--compare", "model", "--compare-levels", "tiny-vgg,tiny-cn"],
        "Unknown model 'tiny-cn' in the runs. Did you mean 'tiny-cnn'",
    ),
    (["--compare", "seed_type", "--spending", "obf"], "one of 'obrien-fleming', 'pocock'"),
]


@pytest.mark.parametrize(("options", "message"), BAD)
def test_bad_questions_are_refused_at_build_in_one_line(
    two_runs, tmp_path, capsys, options, message
):
    options = options if "--budget" in options else [*options, "--budget", "20"]
    assert _build(tmp_path / "S", two_runs, *options) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "S").exists()  # nothing half-built


def test_bots_stop_when_the_comparison_is_decided_and_every_answer_is_kept(
    two_runs, tmp_path, live_server, capsys
):
    study = tmp_path / "S"
    # a smallest difference of 30 points, which two random tiny models do not have: the
    # comparison is settled (futile) after a few looks, long before the budget of 20
    options = ["--compare", "model", "--difference", "0.3"]
    assert _build(study, two_runs, *options, "--budget", "20", "--look-every", "2") == 0
    built = capsys.readouterr().out
    assert "Decides whether the levels of 'model' differ" in built
    assert "Looks after 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 kept participants" in built
    with live_server(create_app(study, "tok")) as url:
        args = ["survey", "bots", str(study), "--url", url, "--n", "20", "--judge", "pixel"]
        assert main([*args, "--lapse", "0.2"]) == 0
        finished = capsys.readouterr().out
        summary = survey_summary(study)
        state = summary["sequential"]
        assert summary["closed"] and state["stopped"]["reason"] == "decided"
        kept = state["stopped"]["kept"]
        assert kept < 20 and kept in state["looks"]
        assert state["looks_taken"] >= 2  # through several looks
        assert state["looks_taken"] == state["looks"].index(kept) + 1
        assert [q["state"] for q in state["questions"]] == ["futile"]
        # the bots stopped when the study closed, and the export holds every answer given
        assert f"{kept} simulated participants finished ({kept * 6} answers" in finished
        out = tmp_path / "answers.csv"
        assert main(["survey", "export", str(study), "--out", str(out)]) == 0
        table = pd.read_csv(out)
        assert len(table) == kept * 6 and table["participant"].nunique() == kept
        # closed to new sessions, and says so
        import httpx

        body = {"platform": "bot", "pid": "late", "bot_token": bot_token(study)}
        late = httpx.post(f"{url}/api/sessions", json=body)
        assert late.status_code == 403 and "closed" in late.json()["error"]
        assert httpx.get(f"{url}/api/study").json() == {"open": False}
        progress = httpx.get(
            f"{url}/api/admin/progress", headers={"Authorization": "Bearer tok"}
        ).json()
        assert progress["sequential"]["questions"][0]["state"] == "futile"
        _admin_page_shows_the_questions(url, "/tmp/seq-admin.png")
    capsys.readouterr()
    assert main(["survey", "status", str(study)]) == 0
    printed = capsys.readouterr().out
    assert "model: tiny-cnn - tiny-vgg: futile" in printed
    assert f"Stop recruiting: every question is decided at {kept} kept participants" in printed


def test_sessions_beyond_the_budget_wait_until_one_is_given_up(two_runs, tmp_path):
    study = tmp_path / "S"
    assert _build(study, two_runs, "--compare", "model", "--budget", "3", "--look-every", "3") == 0
    now = [1000.0]
    app = create_app(study, "tok", clock=lambda: now[0])
    token = bot_token(study)
    with TestClient(app) as client:
        for i in range(3):
            body = {"platform": "bot", "pid": f"b{i}", "bot_token": token}
            assert client.post("/api/sessions", json=body).status_code == 200
        body = {"platform": "bot", "pid": "b3", "bot_token": token}
        full = client.post("/api/sessions", json=body)
        assert full.status_code == 403
        assert "as many participants as it needs" in full.json()["error"]
        assert client.get("/api/study").json() == {"open": True}
        now[0] += 3 * 3600  # the three sessions went silent: their places are free again
        assert client.post("/api/sessions", json=body).status_code == 200


def test_a_fixed_plan_has_no_looks(two_runs, tmp_path, capsys):
    study = tmp_path / "S"
    assert _build(study, two_runs) == 0
    assert survey_summary(study)["sequential"] is None
    capsys.readouterr()
    assert main(["survey", "status", str(study)]) == 0
    assert "A fixed plan: no looks." in capsys.readouterr().out


def _admin_page_shows_the_questions(url, screenshot):
    """The admin page, in Chromium, shows each question's state and says to stop recruiting."""
    from playwright.sync_api import expect, sync_playwright
    from test_browser import ARGS, CHROMIUM  # the suite's Chromium and its flags

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        page.goto(f"{url}/admin")
        page.fill("#token", "tok")
        page.click("#load")
        expect(page.locator("#questions")).to_contain_text("model: tiny-cnn - tiny-vgg")
        expect(page.locator("#questions")).to_contain_text("futile")
        expect(page.locator("#looks")).to_contain_text("Stop recruiting: every question is decided")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()


def _answer_everything(client, engine, pid, token, regular=None):
    """Answer every catch trial right (read from the plan: an attentive participant), and
    the others right too, or on the side ``regular(position)`` says."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from percalign.store.db import ParticipantRow, SlotTrialRow

    with Session(engine) as db:
        slot = db.get(ParticipantRow, pid).slot
        rows = db.scalars(select(SlotTrialRow).where(SlotTrialRow.slot == slot)).all()
        right = {
            t.position: t.display_order.index(0)
            if t.is_catch or regular is None
            else regular(t.position)
            for t in rows
        }
    auth = {"Authorization": f"Bearer {token}"}
    position = 0
    while position is not None:
        t = client.get(f"/api/participants/{pid}/trials/{position}", headers=auth).json()
        body = {"position": position, "choice": right[position], "shown": t["shown"]}
        a = client.post(f"/api/participants/{pid}/answers", json=body, headers=auth).json()
        position = None if a["done"] else a["next"]


def test_new_slots_follow_the_undecided_questions_and_keep_the_plans_guarantees(two_runs, tmp_path):
    import itertools

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from percalign.store.db import ItemRow, ParticipantRow, SlotTrialRow, connect
    from percalign.store.export import export_rows
    from percalign.store.sessions import SurveyStore
    from percalign.store.study import study_url

    study = tmp_path / "S"
    options = ["--compare", "model", "--budget", "50", "--look-every", "20"]
    assert _build(study, two_runs, *options, "--judgments-per-item", "1") == 0
    clock = itertools.count(1_700_000_000).__next__  # a second passes at every call
    app = create_app(study, "tok", clock=clock)
    token = bot_token(study)
    engine = connect(study_url(study))
    with TestClient(app) as client:
        # the plan's slots first: every item answered once
        slots = SurveyStore(engine).meta("plan")["slots"]
        for i in range(slots):
            body = {"platform": "bot", "pid": f"b{i}", "bot_token": token}
            s = client.post("/api/sessions", json=body).json()
            _answer_everything(client, engine, s["participant"], s["token"])
        # a look found the tiny-cnn questions settled: only tiny-vgg still needs answers
        SurveyStore(engine).set_meta("needs", {"model": {"tiny-cnn": 0.0, "tiny-vgg": 1.0}})
        body = {"platform": "bot", "pid": "late", "bot_token": token}
        s = client.post("/api/sessions", json=body).json()
        assert s["total"] == 6
        with Session(engine) as db:
            slot = db.get(ParticipantRow, s["participant"]).slot
            trials = db.scalars(select(SlotTrialRow).where(SlotTrialRow.slot == slot)).all()
            models = {
                t.item: db.get(ItemRow, t.item).condition["model"] for t in trials if not t.is_catch
            }
        assert slot >= slots  # a slot of its own, after the plan's
        assert set(models.values()) == {"tiny-vgg"} and len(models) == 5  # no item twice
        assert sum(t.is_catch for t in trials) == 1  # the plan's catch trial is kept
        sides = [t.display_order.index(0) for t in trials]
        assert sorted(sides.count(p) for p in (0, 1)) == [3, 3]  # the target's side balanced
        _answer_everything(client, engine, s["participant"], s["token"])
        assert SurveyStore(engine).status(s["participant"]) == "completed"
        # two who start together: the second's items are those the first was not given
        starts = [
            client.post("/api/sessions", json={**body, "pid": pid}).json() for pid in ("c", "d")
        ]
        with Session(engine) as db:
            chosen = []
            for started in starts:
                slot = db.get(ParticipantRow, started["participant"]).slot
                rows = db.scalars(select(SlotTrialRow).where(SlotTrialRow.slot == slot)).all()
                chosen.append({t.item for t in rows if not t.is_catch})
        # (counting the first's trials still ahead: without them both get the same 5)
        assert len(chosen[0] & chosen[1]) < 5
        for started in starts:
            _answer_everything(client, engine, started["participant"], started["token"])
    # their answers are exported like any other
    table = pd.DataFrame(export_rows(engine))
    assert len(table) == (slots + 3) * 6 and table["participant"].nunique() == slots + 3
    engine.dispose()


def test_an_undecided_question_says_what_budget_its_power_needs():
    """At a look, each undecided question gets the budget its declared power needs from the
    answers so far (advice for the researcher), and the status says it."""
    import numpy as np

    from percalign.scoring.sequential import decide
    from percalign.scoring.stopping import Stopping, describe_looks
    from percalign.store.looks import _needed

    rng = np.random.default_rng(0)
    rows = [
        {"participant": f"p{p}", "item": f"{m}-{t}", "target": f"t{t}", "model": m,
         "correct": int(rng.random() < (0.70 if m == "a" else 0.74) + 0.1 * rng.normal())}
        for p in range(10) for m in ("a", "b") for t in range(40)
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    stopping = Stopping(compare="model", budget=200, look_every=10)
    history = decide(stopping.plan(), table)
    assert history["model: a - b"][-1].decision == "undecided"
    needed = _needed(stopping, table, history)["model: a - b"]
    assert needed is not None and 10 < needed <= 400
    state = {
        "budget": 200, "looks": [10, 20], "looks_taken": 1, "next_look": 20, "kept": 10,
        "stopped": None, "recruit": True,
        "questions": [{"question": "model: a - b", "state": "undecided", "looks": 1,
                       "participants": 10, "estimate": 0.0, "low": -0.1, "high": 0.1,
                       "needed": needed}],
    }  # fmt: skip
    assert f"needs a budget of about {needed}" in describe_looks(state)[1]
    state["questions"][0]["needed"] = None
    assert "no budget reaches the declared power" in describe_looks(state)[1]
