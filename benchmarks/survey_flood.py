"""A flood of session starts against the participant service, and a real participant
answering through it (issue 16's finding: 500 starts took 20 s, a participant's round trips
went from 10 ms to 211 ms, and the admin's "started" count became 513).

Builds a small study, serves it on 127.0.0.1 with uvicorn in this process, measures a
participant's trial round trip alone, then again while N threads send session starts as
fast as they can (all from 127.0.0.1: one client address), and prints how many starts were
accepted and refused (429), and the participants the study counts.

    .venv/bin/python benchmarks/survey_flood.py --starts 500
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from percalign.cli import main
from percalign.execution.serve import serve_app
from percalign.survey.app import create_app


def _build(work: Path) -> Path:
    run, study = work / "run", work / "study"
    common = ["--model", "tiny-vgg", "--images", "digits", "--n-images", "4", "--steps", "3"]
    assert main(["invert", *common, "--seeds", "image", "--out", str(run)]) == 0
    build = ["survey", "build", str(study), "--runs", str(run), "--include-invalid"]
    assert main([*build, "--trials-per-participant", "40", "--judgments-per-item", "2"]) == 0
    return study


def _round_trips(url: str, n: int) -> list[float]:
    s = httpx.post(f"{url}/api/sessions", json={"platform": "link", "pid": f"p{time.time()}"})
    s.raise_for_status()
    body = s.json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    times = []
    with httpx.Client(base_url=url, headers=auth) as c:
        for _ in range(n):
            start = time.perf_counter()
            c.get(f"/api/participants/{body['participant']}/trials/0").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return times


def main_flood() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = _build(Path(tmp))
        with serve_app(create_app(study, "flood-admin")) as url:
            alone = _round_trips(url, 50)
            statuses: list[int] = []
            lock = threading.Lock()

            def flood(k: int) -> None:
                with httpx.Client(base_url=url) as c:
                    for i in range(k, args.starts, args.threads):
                        r = c.post("/api/sessions", json={"platform": "link", "pid": f"f{i}"})
                        with lock:
                            statuses.append(r.status_code)

            threads = [threading.Thread(target=flood, args=(k,)) for k in range(args.threads)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            during = _round_trips(url, 50)
            for t in threads:
                t.join()
            seconds = time.perf_counter() - start
            started = httpx.get(
                f"{url}/api/admin/progress", headers={"Authorization": "Bearer flood-admin"}
            ).json()["started"]
    ok, refused = statuses.count(200), statuses.count(429)
    print(
        f"{args.starts} starts in {seconds:.1f} s: {ok} accepted, {refused} refused (429), "
        f"other {len(statuses) - ok - refused}; "
        f"participants started: {started} (2 of them the measuring participants)"
    )
    for name, t in (("alone", alone), ("during the flood", during)):
        print(f"trial round trip {name}: median {statistics.median(t):.1f} ms, max {max(t):.1f} ms")


if __name__ == "__main__":
    main_flood()
