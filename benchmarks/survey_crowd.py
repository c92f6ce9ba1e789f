"""The survey service under a paced crowd: latency per call, server CPU per trial, and an
audit of the export against every acknowledged answer.

Builds a study (tiny-vgg IRIs of 20 digits x 2 seeds: 80 items, 40 trials per participant),
starts ``percalign survey serve`` on 127.0.0.1 (SQLite, or a private PostgreSQL cluster
started here), and lets N simulated participants arrive spread over ``--arrive`` seconds.
Each starts a session and, for every trial, loads the trial's images as a browser with a
cold cache would, thinks ``--think`` seconds on average (0.5x to 1.5x), and answers; the
answer's reply carries the next trial, so a trial is one API round trip plus its images.
Server CPU is the user + system time of the server's whole process group over the run.

    .venv/bin/python benchmarks/survey_crowd.py                         # 300 paced, SQLite
    .venv/bin/python benchmarks/survey_crowd.py --participants 50 --trials 10
    .venv/bin/python benchmarks/survey_crowd.py --db postgres --workers 2

Traffic goes to 127.0.0.1 only; the run is bounded by ``--participants`` and ``--timeout``
and stops by itself; the server, the cluster and the work folder are removed at the end
(``--keep`` keeps the folder). Exits 1 when an acknowledged answer is missing from the
export, one is exported twice, a call answered 5xx, or a participant did not finish.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from percalign.store.db import connect
from percalign.store.export import export_rows
from percalign.store.study import bot_token

sys.path.insert(0, str(Path(__file__).parent))
from _load import LoadReport, simulate
from _servers import PostgresCluster, ServiceProcess
from survey_load import TOKEN, build  # the same study as the saturation run

_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid``, plus what
    their finished children used (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / _TICK


def exported(url: str, names: set[str]) -> Counter[tuple[str, int]]:
    """(participant, position) of every exported answer of the simulated participants."""
    engine = connect(url)
    try:
        rows = export_rows(engine)
    finally:
        engine.dispose()
    return Counter(
        (str(r["participant"]), int(r["trial"])) for r in rows if r["platform_pid"] in names
    )


def figures(report: LoadReport, cpu_s: float) -> dict[str, Any]:
    pct = report.percentile
    calls = {
        kind: {
            "n": len(ms),
            "p50_ms": round(pct(ms, 0.50), 1),
            "p95_ms": round(pct(ms, 0.95), 1),
            "p99_ms": round(pct(ms, 0.99), 1),
            "max_ms": round(max(ms), 1),
        }
        for kind, ms in sorted(report.calls.items())
        if ms
    }
    return {
        "participants": len(report.participants),
        "finished": sum(p.finished for p in report.participants),
        "answers": report.answers,
        "seconds": round(report.seconds, 1),
        "calls": calls,
        "server_cpu_s": round(cpu_s, 2),
        "server_cpu_ms_per_trial": round(1000 * cpu_s / max(report.answers, 1), 2),
        "responses_5xx": report.server_errors,
        "statuses": dict(sorted(report.statuses.items())),
        "transport_errors": report.transport_errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--participants", type=int, default=300)
    parser.add_argument("--trials", type=int, default=40, help="trials per participant")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--arrive", type=float, default=30.0, help="arrivals over S seconds")
    parser.add_argument("--think", type=float, default=2.0, help="mean think time, seconds")
    parser.add_argument("--no-images", action="store_true", help="do not fetch the images")
    parser.add_argument(
        "--embed-images-kb",
        type=float,
        default=64.0,
        help="the server's --embed-images-kb (0: every image by URL, three requests a trial)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=1800, help="give up after S seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("survey_crowd: --timeout reached"))
    signal.alarm(args.timeout)
    work = Path(tempfile.mkdtemp(prefix="percalign-crowd-"))
    os.environ.setdefault("PERCALIGN_HOME", str(work / "home"))
    result: dict[str, Any] = {"db": args.db, "workers": args.workers, "think_s": args.think}
    result["embed_images_kb"] = args.embed_images_kb
    try:
        with ExitStack() as stack:
            pg = stack.enter_context(PostgresCluster()) if args.db == "postgres" else None
            print(f"building the study in {work} ...", flush=True)
            study = build(work, pg.url if pg else None, args.trials)
            url = pg.url if pg else f"sqlite:///{study / 'percalign.db'}"
            server = stack.enter_context(
                ServiceProcess(
                    study,
                    TOKEN,
                    args.workers,
                    log=work / "server.log",
                    options=["--embed-images-kb", str(args.embed_images_kb)],
                )
            )
            assert server.proc is not None
            print(
                f"{args.participants} paced participants x {args.trials} trials against "
                f"{server.url} ({args.db}, {args.workers} worker(s)) ...",
                flush=True,
            )
            before = group_cpu_s(server.proc.pid)
            start = time.perf_counter()
            report = simulate(
                server.url,
                args.participants,
                bot_token=bot_token(study),
                trials=args.trials,
                prefix=f"crowd{args.seed}",
                seed=args.seed,
                think_s=args.think,
                arrive_s=args.arrive,
                images=not args.no_images,
            )
            cpu = group_cpu_s(server.proc.pid) - before
            result["wall_s"] = round(time.perf_counter() - start, 1)
            server.close()
            result.update(figures(report, cpu))
            names = {p.name for p in report.participants}
            rows = exported(url, names)
            acked = {(p.participant, pos) for p in report.participants for pos in p.acked}
            result["audit"] = {
                "acknowledged": len(acked),
                "exported": sum(rows.values()),
                "lost": len(acked - set(rows)),
                "duplicated": sum(n - 1 for n in rows.values()),
                "unacknowledged": len(set(rows) - acked),
            }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    audit = result["audit"]
    bad = (
        audit["lost"]
        or audit["duplicated"]
        or result["responses_5xx"]
        or result["finished"] != args.participants
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
