"""The survey service under load, with optional kill -9 crashes: figures and a loss audit.

Builds a study (tiny-vgg IRIs of 20 digits, 40 trials per participant), starts
``percalign survey serve`` on 127.0.0.1 (SQLite in WAL mode with full sync, or a private
PostgreSQL cluster started here), runs N concurrent simulated participants through every
trial, optionally kills the whole server with SIGKILL at random moments and restarts it,
then audits the database against every acknowledged answer. It also measures the raw limit:
durable single-row inserts per second of the same database on this machine.

    .venv/bin/python benchmarks/survey_load.py                      # SQLite, 200 x 40
    .venv/bin/python benchmarks/survey_load.py --db postgres        # 4 workers
    .venv/bin/python benchmarks/survey_load.py --kills 3            # crashes during the load

Traffic goes to 127.0.0.1 only; every loop is bounded; servers, the cluster and the work
folder are removed at the end (``--keep`` keeps the folder). Exits 1 when anything was lost,
duplicated, answered 5xx, or a participant did not resume where it was.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _load import LoadReport, audit, simulate  # benchmarks/: this script's folder
from _servers import PostgresCluster, ServiceProcess

from percalign.store.db import connect
from percalign.store.study import bot_token

TOKEN = "bench-admin-token"


def build(work: Path, database: str | None, trials: int) -> Path:
    """A study of tiny-vgg IRIs (20 digits x 2 seeds), built with the real CLI."""
    run, study = work / "run", work / "STUDY"
    cli = [sys.executable, "-m", "percalign"]
    invert = ["invert", "--model", "tiny-vgg", "--images", "digits", "--n-images", "20"]
    invert += ["--seeds", "super-noise,image", "--steps", "3", "--out", str(run)]
    subprocess.run([*cli, *invert], check=True, capture_output=True)
    survey = ["survey", "build", str(study), "--runs", str(run), "--include-invalid"]
    survey += ["--trials-per-participant", str(trials), "--judgments-per-item", "5"]
    survey += ["--database", database] if database else []
    subprocess.run([*cli, *survey], check=True, capture_output=True)
    return study


def raw_sqlite_inserts(path: Path, n: int) -> float:
    """Durable single-row inserts per second: WAL, synchronous=FULL, one commit per row."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE r (p TEXT, pos INT, choice INT, PRIMARY KEY (p, pos))")
    start = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO r VALUES (?, ?, ?)", ("p", i, i % 2))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - start)
    db.close()
    return rate


def raw_postgres_inserts(url: str, n: int, table: str) -> float:
    """Durable single-row inserts per second on the cluster: one committed INSERT per row."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (p TEXT, pos INT, choice INT, PRIMARY KEY (p, pos))")
        start = time.perf_counter()
        for i in range(n):
            c.execute(f"INSERT INTO {table} VALUES (%s, %s, %s)", ("p", i, i % 2))
        return n / (time.perf_counter() - start)


def raw_limit(pg: PostgresCluster | None, work: Path, i: int, n: int) -> float:
    """Raw durable single-row inserts per second of the study's kind of database."""
    if pg is not None:
        return raw_postgres_inserts(pg.url, n, f"raw_inserts_{i}")
    return raw_sqlite_inserts(work / f"raw{i}.db", n)


class Killer(threading.Thread):
    """SIGKILLs the server when the load reaches random fractions of its answers, then
    restarts it after a random pause; ``kills`` times in all, or fewer if the load ends."""

    def __init__(self, server: ServiceProcess, kills: int, total: int, seed: int) -> None:
        super().__init__(daemon=True)
        rng = random.Random(seed)
        self.server = server
        self.marks = sorted(int(total * rng.uniform(0.1, 0.9)) for _ in range(kills))
        self.pauses = [rng.uniform(0.2, 1.5) for _ in range(kills)]
        self.answers = 0  # acknowledged so far (set by the load's callback)
        self.finished = threading.Event()  # set by the main thread when the load is over
        self.done: list[dict[str, float]] = []
        self.failure: BaseException | None = None

    def on_answer(self, n: int) -> None:
        self.answers = n

    def run(self) -> None:
        try:
            for mark, pause in zip(self.marks, self.pauses, strict=True):
                while self.answers < mark:
                    if self.finished.wait(0.02):
                        return
                self.server.kill()
                killed_at = self.answers
                time.sleep(pause)
                start = time.perf_counter()
                self.server.start()
                down = pause + time.perf_counter() - start
                self.done.append({"at_answers": killed_at, "down_s": round(down, 2)})
        except BaseException as exc:  # reported by the main thread
            self.failure = exc


def figures(report: LoadReport) -> dict[str, Any]:
    pct = report.percentile
    return {
        "participants": len(report.participants),
        "answers": report.answers,
        "seconds": round(report.seconds, 2),
        "answers_per_s": round(report.answers_per_s, 1),
        "answer_p50_ms": round(pct(report.answer_ms, 0.50), 1),
        "answer_p99_ms": round(pct(report.answer_ms, 0.99), 1),
        "answer_e2e_p99_ms": round(pct(report.answer_e2e_ms, 0.99), 1),
        "responses_5xx": report.server_errors,
        "statuses": dict(sorted(report.statuses.items())),
        "transport_errors": report.transport_errors,
        "resumes": sum(p.resumes for p in report.participants),
        "resume_errors": report.resume_errors[:5],
        "finished": sum(p.finished for p in report.participants),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--trials", type=int, default=40, help="trials per participant")
    parser.add_argument("--workers", type=int, default=None, help="default: 1 SQLite, 4 PG")
    parser.add_argument("--kills", type=int, default=0, help="SIGKILL + restart N times")
    parser.add_argument("--raw-inserts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=1800, help="give up after S seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("survey_load: --timeout reached"))
    signal.alarm(args.timeout)
    workers = args.workers or (1 if args.db == "sqlite" else 4)
    work = Path(tempfile.mkdtemp(prefix="percalign-load-"))
    os.environ.setdefault("PERCALIGN_HOME", str(work / "home"))
    result: dict[str, Any] = {"db": args.db, "workers": workers, "kills_asked": args.kills}
    try:
        with ExitStack() as stack:
            pg = stack.enter_context(PostgresCluster()) if args.db == "postgres" else None
            print(f"building the study in {work} ...", flush=True)
            study = build(work, pg.url if pg else None, args.trials)
            url = pg.url if pg else f"sqlite:///{study / 'percalign.db'}"
            log = work / "server.log"
            server = stack.enter_context(ServiceProcess(study, TOKEN, workers, log=log))
            killer = None
            if args.kills:
                total = args.participants * args.trials
                killer = Killer(server, args.kills, total, args.seed)
                killer.start()
            print(
                f"{args.participants} participants x {args.trials} trials against {server.url} "
                f"({args.db}, {workers} worker(s), {args.kills} kill(s)) ...",
                flush=True,
            )
            report = simulate(
                server.url,
                args.participants,
                bot_token=bot_token(study),
                prefix=f"load{args.seed}",
                seed=args.seed,
                on_answer=killer.on_answer if killer else None,
            )
            if killer:
                killer.finished.set()
                killer.join(timeout=120)
                if killer.failure:
                    raise killer.failure
                result["kills"] = killer.done
            engine = connect(url)
            found = audit(engine, report)
            engine.dispose()
            server.close()
            result.update(figures(report))
            result["audit"] = {
                "acknowledged": found.acknowledged,
                "stored": found.stored,
                "lost": found.lost,
                "unacknowledged": found.unacknowledged,
                "duplicated": found.duplicated,
                "extra_sessions": found.extra_sessions,
            }
            # the limit, sampled three times: fsync latency of a virtual disk drifts a lot
            samples = [raw_limit(pg, work, i, args.raw_inserts) for i in range(3)]
            result["raw_inserts_per_s"] = [round(r) for r in samples]
            limit = statistics.median(samples)
            result["fraction_of_raw_median"] = round(result["answers_per_s"] / limit, 3)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    bad = (
        not found.ok
        or report.server_errors
        or report.resume_errors
        or result["finished"] != args.participants
        or (args.kills and len(result.get("kills", [])) != args.kills)
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
