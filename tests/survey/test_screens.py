"""Matching screens (design ``clustering``): the design, the API that stores a screen's
assignments all or none, bots through HTTP, the export and the scores."""

import asyncio
import itertools
import json
from collections import Counter

import httpx
import pandas as pd
import pytest

from percalign.errors import ConfigError
from percalign.scoring import confusion_matrices, matching_accuracy
from percalign.store.db import connect
from percalign.store.export import export_rows
from percalign.store.study import bot_token, study_url
from percalign.survey.app import create_app
from percalign.survey.design import make_plan

TOKEN = "screens-admin"
SCREEN = ("--design", "clustering", "--k", "3", "--iris-per-target", "2")


def _records(targets=4, per_target=3):
    return [
        {"iri": f"i{t}-{j}", "target": f"t{t}", "seed": f"s{t}-{j}", "condition": {"model": "m"}}
        for t in range(targets)
        for j in range(per_target)
    ]


def _screens(slot):
    """A slot's screens as lists of its trials."""
    out: dict[int, list] = {}
    for t in slot:
        out.setdefault(t.screen, []).append(t)
    return list(out.values())


def test_a_screen_shows_k_targets_with_their_iris_in_one_order():
    plan = make_plan(
        _records(), design="clustering", k=3, iris_per_target=2, trials_per_participant=2,
        judgments_per_item=3, seed=1,
    )  # fmt: skip
    assert plan.settings["design"] == "clustering" and plan.settings["trials_per_slot"] == 2
    shown = Counter()
    for slot in plan.slots:
        screens = _screens(slot)
        assert len(screens) == 2
        for screen in screens:
            assert len(screen) == 6  # 3 targets x 2 IRIs
            first = screen[0]
            assert [t.screen for t in screen] == [slot.index(first)] * 6
            # every IRI on the screen sees the same targets in the same display order
            displays = {tuple(plan.items[t.item].candidates[i] for i in t.order) for t in screen}
            assert len(displays) == 1
            (display,) = displays
            assert len(set(display)) == 3
            owners = Counter(plan.items[t.item].candidates[0] for t in screen)
            assert owners == Counter({target: 2 for target in display})
            shown[frozenset(display)] += 1
    # 4 targets in groups of 3: two groups, each with ceil(3 / 2) screens, each shown 3 times
    assert plan.settings["screens"] == 4 and plan.settings["min_judgments"] >= 3


def test_targets_rotate_through_the_positions_across_a_screens_showings():
    plan = make_plan(
        _records(targets=3, per_target=2), design="clustering", k=3, iris_per_target=2,
        trials_per_participant=1, judgments_per_item=3, seed=0,
    )  # fmt: skip
    where = Counter()
    for slot in plan.slots:
        t = slot[0]
        display = [plan.items[t.item].candidates[i] for i in t.order]
        where.update((target, p) for p, target in enumerate(display))
    assert set(where.values()) == {1}  # each target once at each of the 3 positions


def test_catch_screens_show_the_targets_themselves_and_leave_coverage_alone():
    plan = make_plan(
        _records(), design="clustering", k=3, iris_per_target=2, trials_per_participant=3,
        judgments_per_item=2, catch_rate=0.34, seed=2,
    )  # fmt: skip
    settings = plan.settings
    assert settings["catch_per_slot"] == 1 and settings["regular_per_slot"] == 2
    assert settings["trials_per_slot"] == 3 and settings["min_judgments"] >= 2
    for slot in plan.slots:
        screens = _screens(slot)
        assert len(screens) == 3
        catch = [screen for screen in screens if screen[0].is_catch]
        assert len(catch) == 1
        (screen,) = catch
        assert all(t.is_catch for t in screen) and len(screen) == 3  # one copy of each target
        items = [plan.items[t.item] for t in screen]
        # the copy of a target is that target, to be assigned to itself
        assert all(i.query == i.candidates[0] and i.is_catch for i in items)
        displays = {
            tuple(i.candidates[o] for o in t.order) for i, t in zip(items, screen, strict=True)
        }
        assert len(displays) == 1 and set(next(iter(displays))) == {i.query for i in items}
        regular = [t for screen in screens if not screen[0].is_catch for t in screen]
        assert regular and not any(t.is_catch for t in regular)
    # without catch screens the regular screens are laid out the same way
    plain = make_plan(
        _records(), design="clustering", k=3, iris_per_target=2, trials_per_participant=2,
        judgments_per_item=2, catch_rate=0.0, seed=2,
    )  # fmt: skip
    assert plain.settings["catch_per_slot"] == 0 and plain.settings["screens"] == 4


def test_too_few_targets_for_a_screen_is_refused():
    with pytest.raises(ConfigError, match="k=5 targets of one run; the runs have 4"):
        make_plan(_records(), design="clustering", k=5)


def test_matching_accuracy_and_confusion_matrices():
    rows = [  # two IRIs of target a, one of b, on a screen with targets a, b (k = 2)
        {"model": "m1", "query": "x", "candidates": "a|b", "display_order": "0|1", "choice": 0},
        {"model": "m1", "query": "x", "candidates": "a|b", "display_order": "1|0", "choice": 0},
        {"model": "m1", "query": "y", "candidates": "b|a", "display_order": "0|1", "choice": 1},
        {"model": "m2", "query": "z", "candidates": "a|b", "display_order": "0|1", "choice": 0},
    ]
    table = pd.DataFrame(rows)
    table["correct"] = [1, 0, 0, 1]
    table["chance"] = 0.5
    acc = matching_accuracy(table).set_index("query")
    assert acc.loc["x", "n"] == 2 and acc.loc["x", "accuracy"] == 0.5
    assert acc.loc["y", "accuracy"] == 0.0 and acc.loc["x", "chance"] == 0.5
    m1 = confusion_matrices(table)["m1"]
    # rows: the IRI's target, columns: the target it was assigned to
    assert m1.loc["a", "a"] == 1 and m1.loc["a", "b"] == 1 and m1.loc["b", "a"] == 1
    assert m1.loc["b", "b"] == 0
    assert confusion_matrices(table)["m2"].loc["a", "a"] == 1


@pytest.fixture(scope="module")
def study(make_study):
    # 4 targets x 2 IRIs; k = 3: two screens of 6 IRIs, both in every slot (12 trials)
    return make_study(*SCREEN, "--trials-per-participant", "2")


def _client(study, clock=None):
    app = create_app(
        study, TOKEN, completion_codes={"completed": "D0NE"},
        clock=clock or itertools.count(1_700_000_000).__next__,
    )  # fmt: skip
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _truth(study, pid):
    """The correct display position of each of the participant's trials (from the plan)."""
    plan = json.loads((study / "plan.json").read_text())
    return [t["order"].index(0) for t in plan["slots"][_slot(study, pid)]]


def test_a_screen_is_submitted_once_whole_and_exported_per_iri(study):
    async def go():
        async with _client(study) as c:
            s = (await c.post("/api/sessions", json={"platform": "link", "pid": "sc1"})).json()
            pid, auth = s["participant"], {"Authorization": f"Bearer {s['token']}"}
            assert s["total"] == 12
            base = f"/api/participants/{pid}"
            t = (await c.get(f"{base}/trials/0", headers=auth)).json()
            assert t["kind"] == "screen" and t["query"] is None
            assert len(t["iris"]) == 6 and len(t["candidates"]) == 3
            assert (t["step"], t["steps"]) == (0, 2) and len(t["embedded"]) == 9
            # a trial inside the screen is not served, nor answered on its own
            inside = await c.get(f"{base}/trials/3", headers=auth)
            assert inside.status_code == 409 and "starts at trial 1" in inside.json()["error"]
            alone = await c.post(
                f"{base}/answers", headers=auth,
                json={"position": 0, "choice": 0, "shown": t["shown"]},
            )  # fmt: skip
            assert alone.status_code == 409 and "screens" in alone.json()["error"]
            short = await c.post(
                f"{base}/screens", headers=auth,
                json={"position": 0, "assignments": [0, 1], "shown": t["shown"]},
            )  # fmt: skip
            assert short.status_code == 409 and "6 images to assign" in short.json()["error"]
            bad = await c.post(
                f"{base}/screens", headers=auth,
                json={"position": 0, "assignments": [0] * 5 + [3], "shown": t["shown"]},
            )  # fmt: skip
            assert bad.status_code == 409
            boolean = await c.post(
                f"{base}/screens", headers=auth,
                json={"position": 0, "assignments": [True] * 6, "shown": t["shown"]},
            )  # fmt: skip
            assert boolean.status_code == 422
            truth = _truth(study, pid)
            first = [*truth[:5], (truth[5] + 1) % 3]  # the last one wrong
            body = {"position": 0, "assignments": first, "shown": t["shown"], "rt_ms": 9000}
            a = (await c.post(f"{base}/screens", headers=auth, json=body)).json()
            assert a["next"] == 6 and not a["done"] and a["trial"]["step"] == 1
            again = (await c.post(f"{base}/screens", headers=auth, json=body)).json()
            assert again["duplicate"] and again["next"] == 6
            changed = await c.post(
                f"{base}/screens", headers=auth, json={**body, "assignments": truth[:6]}
            )
            assert changed.status_code == 409 and "already submitted" in changed.json()["error"]
            t2 = a["trial"]
            done = (
                await c.post(
                    f"{base}/screens", headers=auth,
                    json={"position": 6, "assignments": truth[6:], "shown": t2["shown"]},
                )
            ).json()  # fmt: skip
            assert done["done"] and done["completion_code"] == "D0NE"
            return pid

    pid = asyncio.run(go())
    engine = connect(study_url(study))
    rows = [r for r in export_rows(engine) if r["participant"] == pid]
    engine.dispose()
    assert [r["trial"] for r in rows] == list(range(12))
    assert [r["correct"] for r in rows] == [1] * 5 + [0] + [1] * 6
    assert {r["screen"] for r in rows[:6]} == {0} and {r["screen"] for r in rows[6:]} == {6}
    assert {r["chance"] for r in rows} == {1 / 3} and rows[0]["rt_ms"] == 9000


def test_a_screen_submitted_before_its_display_time_is_refused(study):
    async def go():
        # the same second for serving and submitting: 0 ms on screen
        async with _client(study, clock=lambda: 1_700_000_000.0) as c:
            s = (await c.post("/api/sessions", json={"platform": "link", "pid": "sc2"})).json()
            pid, auth = s["participant"], {"Authorization": f"Bearer {s['token']}"}
            t = (await c.get(f"/api/participants/{pid}/trials/0", headers=auth)).json()
            early = await c.post(
                f"/api/participants/{pid}/screens", headers=auth,
                json={"position": 0, "assignments": [0] * 6, "shown": t["shown"]},
            )  # fmt: skip
            return early

    early = asyncio.run(go())
    assert early.status_code == 409 and "ms on screen" in early.json()["error"]


def test_bots_answer_screens_through_the_api(make_study, live_server):
    from percalign.judges import Bot, get_judge
    from percalign.survey.bots import run_bots

    study = make_study(*SCREEN, "--trials-per-participant", "2")
    bots = [Bot(get_judge("pixel"), lapse=0.0, seed=i) for i in range(2)]
    with live_server(create_app(study, TOKEN)) as url:
        done = run_bots(url, bots, "sbot", bot_token=bot_token(study))
    assert done == {"sbot-0": 12, "sbot-1": 12}
    engine = connect(study_url(study))
    rows = export_rows(engine)
    engine.dispose()
    assert len(rows) == 24 and {r["status"] for r in rows} == {"completed"}
    table = pd.DataFrame(rows)
    assert set(confusion_matrices(table)) == {str(m) for m in table["model"].unique()}


def test_a_participant_who_misassigns_the_catch_screen_fails_attention(make_study):
    # 2 regular screens and 1 catch screen per participant (round(0.34 x 3))
    study = make_study(*SCREEN, "--trials-per-participant", "3", "--catch-rate", "0.34")
    plan = json.loads((study / "plan.json").read_text())
    assert plan["settings"]["catch_per_slot"] == 1

    async def go():
        async with _client(study) as c:
            s = (await c.post("/api/sessions", json={"platform": "link", "pid": "sc3"})).json()
            pid, auth = s["participant"], {"Authorization": f"Bearer {s['token']}"}
            truth = _truth(study, pid)
            slot = plan["slots"][_slot(study, pid)]
            position, reply = 0, None
            while position is not None:
                t = (await c.get(f"/api/participants/{pid}/trials/{position}", headers=auth)).json()
                n = len(t["iris"])
                right = truth[position : position + n]
                # the regular screens right, the catch screen's copies all on one target
                wrong = slot[position]["is_catch"]
                body = {
                    "position": position,
                    "assignments": [0] * n if wrong else right,
                    "shown": t["shown"],
                }
                reply = await c.post(f"/api/participants/{pid}/screens", headers=auth, json=body)
                reply = reply.json()
                position = None if reply["done"] else reply["next"]
            return pid, reply

    pid, last = asyncio.run(go())
    assert last["done"] and last.get("completion_code") != "D0NE"
    engine = connect(study_url(study))
    rows = [r for r in export_rows(engine) if r["participant"] == pid]
    engine.dispose()
    catch = [r for r in rows if r["is_catch"]]
    assert len(catch) == 3 and sum(r["correct"] for r in catch) == 1  # one copy lands right
    assert all(r["correct"] for r in rows if not r["is_catch"])
    assert {r["status"] for r in rows} == {"failed_attention"}


def _slot(study, pid):
    engine = connect(study_url(study))
    with engine.connect() as c:
        (slot,) = c.exec_driver_sql("SELECT slot FROM participants WHERE id = ?", (pid,)).one()
    engine.dispose()
    return slot
