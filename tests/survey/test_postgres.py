"""The service on PostgreSQL: a throwaway cluster (Debian's initdb/pg_ctl on 127.0.0.1),
several uvicorn workers, and the database going away and coming back under load."""

import threading

import httpx
import pytest
from _load import audit, simulate
from _servers import PostgresCluster, ServiceProcess

from percalign.store.db import connect
from percalign.store.study import bot_token
from percalign.survey.app import RETRY_AFTER_S
from percalign.survey.client import Backoff

QUICK = Backoff(tries=40, base_s=0.05, cap_s=1.5)


@pytest.fixture(scope="module")
def pg():
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def study(make_study, pg):
    return make_study("--trials-per-participant", "12", "--database", pg.url)


def _check(pg, report, n):
    engine = connect(pg.url)
    found = audit(engine, report)
    engine.dispose()
    assert found.acknowledged == found.stored == n * 10
    assert (found.lost, found.unacknowledged, found.duplicated, found.extra_sessions) == (0,) * 4
    assert all(p.finished for p in report.participants) and report.resume_errors == []


@pytest.mark.slow
def test_several_workers_on_postgresql_lose_and_duplicate_nothing(pg, study, tmp_path):
    with ServiceProcess(study, "tok", workers=2, log=tmp_path / "server.log") as server:
        report = simulate(server.url, 20, bot_token=bot_token(study), prefix="pg", seed=2)
    _check(pg, report, 20)
    assert report.server_errors == 0 and report.transport_errors == 0


@pytest.mark.slow
def test_a_database_outage_is_a_503_with_a_retry_hint_and_clients_lose_nothing(pg, study, tmp_path):
    token = bot_token(study)  # read while the database is up
    with ServiceProcess(study, "tok", log=tmp_path / "server.log") as server:
        pg.stop("immediate")  # as if the database server crashed
        try:
            down = httpx.post(
                f"{server.url}/api/sessions", json={"platform": "link", "pid": "early"}
            )
        finally:
            back = threading.Timer(2.0, pg.start)  # ... and came back two seconds later
            back.start()
        report = simulate(server.url, 5, bot_token=token, prefix="outage", seed=3, backoff=QUICK)
        back.join()
    assert down.status_code == 503 and down.headers["retry-after"] == str(RETRY_AFTER_S)
    assert down.json()["retry_after"] == RETRY_AFTER_S and "cannot be reached" in down.text
    assert report.statuses[503] > 0  # the clients met the outage and retried through it
    _check(pg, report, 5)
