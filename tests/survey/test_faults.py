"""Crashes: the real server (``percalign survey serve`` in its own process group) is killed
with SIGKILL while participants answer, and started again.

Every answer acknowledged before a kill must be in the database, participants must resume at
the trial after their last acknowledged answer, nobody may get a second session, and a bot
run that spans a restart must complete. Figures at scale: benchmarks/survey_load.py.
"""

import random
import sqlite3
import threading
import time

import pytest
from _load import audit, simulate
from _servers import ServiceProcess

from percalign.cli import main
from percalign.store.db import connect
from percalign.store.study import DB_FILE, bot_token, study_url
from percalign.survey.client import Backoff

QUICK = Backoff(tries=40, base_s=0.05, cap_s=1.5)  # the browser's policy, on a shorter clock


@pytest.fixture(scope="module")
def study(make_study):
    # 8 regular trials + 1 catch + 1 repeat per participant
    return make_study("--trials-per-participant", "12")


def _answers(study, platform_prefix):
    with sqlite3.connect(study / DB_FILE) as db:
        return db.execute(
            "select count(*) from responses r join participants p on p.id = r.participant "
            "where p.platform_pid like ?",
            (platform_prefix + "%",),
        ).fetchone()[0]


@pytest.mark.slow
def test_answers_acknowledged_before_a_kill_survive_and_participants_resume(study, tmp_path):
    kills: list[float] = []
    server = ServiceProcess(study, "tok", log=tmp_path / "server.log")
    start = time.monotonic()

    def killer():
        rng = random.Random(7)
        for _ in range(3):  # kill -9 at random moments while the load runs, then restart
            time.sleep(rng.uniform(0.4, 1.2))
            server.kill()
            kills.append(time.monotonic() - start)
            time.sleep(rng.uniform(0.1, 0.5))
            server.start()

    with server:
        thread = threading.Thread(target=killer)
        thread.start()
        report = simulate(
            server.url,
            20,
            bot_token=bot_token(study),
            prefix="crash",
            seed=1,
            backoff=QUICK,
            think_s=0.25,
        )
        thread.join()
    assert len(kills) == 3 and server.starts == 4
    assert report.seconds > kills[-1] - 0.5, "the load ended before the last kill"
    assert report.transport_errors > 0  # the kills really cut requests off
    found = audit(connect(study_url(study)), report)
    assert found.acknowledged == 20 * 10 == found.stored
    assert (found.lost, found.unacknowledged, found.duplicated, found.extra_sessions) == (0,) * 4
    assert all(p.finished for p in report.participants)
    assert sum(p.resumes for p in report.participants) > 0 and report.resume_errors == []
    assert report.server_errors == 0


@pytest.mark.slow
def test_a_bot_run_that_spans_a_restart_completes(study, tmp_path, capsys):
    server = ServiceProcess(study, "tok", log=tmp_path / "server.log")
    outcome = {}

    def bots():
        outcome["code"] = main(
            ["survey", "bots", str(study), "--url", server.url, "--n", "6", "--judge", "pixel"]
        )

    with server:
        thread = threading.Thread(target=bots)
        thread.start()
        deadline = time.monotonic() + 60
        while _answers(study, "bot0-") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        at_kill = _answers(study, "bot0-")
        time.sleep(1.0)
        server.start()
        thread.join(timeout=300)
    assert 0 < at_kill < 6 * 10  # the run was cut off in the middle
    assert outcome["code"] == 0
    assert "6 simulated participants finished (60 answers" in capsys.readouterr().out
    assert _answers(study, "bot0-") == 60
