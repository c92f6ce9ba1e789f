"""Many simulated participants at once over HTTP, and an audit of what the database kept
(for tests and benchmarks, not part of the package: the tests import it through
``benchmarks/`` on their path).

:func:`simulate` runs ``n`` participants concurrently (asyncio, no torch): each starts a
session, then fetches and answers its trials in order with random choices, retrying every
call like the browser page (:class:`~percalign.survey.client.Backoff`). It records every
acknowledged answer, the latency of every answer call, and every status code. A participant
whose call met a failure (the server gone, a 5xx) comes back through ``POST /api/sessions``
as a reloaded page would, and checks that it resumes its own session at the trial after its
last acknowledged answer. :func:`audit` then compares the acknowledgements with the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.engine import Engine

from percalign.errors import ConfigError, ServiceError
from percalign.store.db import ParticipantRow, ResponseRow
from percalign.survey.client import Backoff, retryable

__all__ = ["Audit", "LoadReport", "ParticipantLog", "audit", "simulate"]


@dataclass
class ParticipantLog:
    """What one simulated participant sent and was told."""

    name: str  # its platform id
    participant: str = ""  # the service's id for it
    acked: dict[int, int] = field(default_factory=dict)  # position -> acknowledged choice
    resumes: int = 0
    resume_errors: list[str] = field(default_factory=list)
    finished: bool = False


@dataclass
class LoadReport:
    """Everything :func:`simulate` saw, with the figures computed from it."""

    participants: list[ParticipantLog]
    seconds: float
    answer_ms: list[float]  # each successful answer call (one HTTP attempt)
    answer_e2e_ms: list[float]  # each answer from first try to acknowledgement
    statuses: Counter[int]
    transport_errors: int
    #: each successful attempt by kind of call: session, trial, image, answer (ms)
    calls: dict[str, list[float]] = field(default_factory=dict)

    @property
    def answers(self) -> int:
        return sum(len(p.acked) for p in self.participants)

    @property
    def answers_per_s(self) -> float:
        return self.answers / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def resume_errors(self) -> list[str]:
        return [e for p in self.participants for e in p.resume_errors]

    @staticmethod
    def percentile(values: list[float], q: float) -> float:
        """The ``q`` quantile (0..1) by the nearest-rank method; NaN when empty.

        >>> LoadReport.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5)
        3.0
        """
        if not values:
            return float("nan")
        ranked = sorted(values)
        return ranked[max(0, min(len(ranked), math.ceil(q * len(ranked))) - 1)]


@dataclass(frozen=True)
class Audit:
    """The database against the acknowledgements: every count but ``stored`` should be 0."""

    acknowledged: int
    stored: int
    lost: int  # acknowledged, but missing or stored with another choice
    unacknowledged: int  # stored, but never acknowledged to the client
    duplicated: int  # rows beyond one per (participant, trial)
    extra_sessions: int  # sessions beyond one per platform id

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unacknowledged or self.duplicated or self.extra_sessions)


class _Http:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one connection per participant.

    httpx spends milliseconds of CPU per request; on a small machine the load generator would
    then measure itself rather than the service. This speaks just what the service answers
    (Content-Length or chunked bodies) and reconnects after any failure.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        try:
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.streams
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            await writer.drain()
            status = int((await reader.readuntil(b"\r\n")).split()[1])
            reply: dict[str, str] = {}
            while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                reply[name.strip().lower()] = value.strip()
            if reply.get("transfer-encoding") == "chunked":
                payload = b""
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    payload += (await reader.readexactly(size + 2))[:-2]
                await reader.readuntil(b"\r\n")
            else:
                payload = await reader.readexactly(int(reply.get("content-length", 0)))
            if reply.get("connection") == "close":
                await self.close()
            return status, reply, payload
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.close()
            raise ConnectionError(f"{method} {path}: connection failed") from None

    async def close(self) -> None:
        if self.streams is not None:
            _, writer = self.streams
            self.streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _Client:
    """Retries one participant's calls; counts what happened into the shared report."""

    def __init__(self, http: _Http, backoff: Backoff, rng: random.Random, report: LoadReport):
        self.http, self.backoff, self.rng, self.report = http, backoff, rng, report
        self.failed = False  # set when a call needed a retry

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        auth: str | None = None,
        raw: bool = False,
    ) -> tuple[Any, float]:
        """(JSON reply, or the bytes when ``raw``; ms of the successful attempt) with the
        browser's retry policy."""
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        for attempt in range(self.backoff.tries):
            hint = None
            start = time.perf_counter()
            try:
                status, reply, payload = await self.http.request(method, path, body, headers)
                self.report.statuses[status] += 1
                if not retryable(status):
                    if status >= 400:
                        raise ServiceError(f"{method} {path} refused: {_reason(status, payload)}")
                    reply_body = payload if raw else json.loads(payload)
                    return reply_body, (time.perf_counter() - start) * 1000
                hint = reply.get("retry-after")
            except ConnectionError:
                self.report.transport_errors += 1
            self.failed = True
            if attempt + 1 < self.backoff.tries:
                await asyncio.sleep(self.backoff.delay(attempt, self.rng, hint))
        raise ServiceError(f"{method} {path}: no answer after {self.backoff.tries} tries.")


def _reason(status: int, payload: bytes) -> str:
    try:
        return str(json.loads(payload)["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"


@dataclass(frozen=True)
class _Pace:
    """How a simulated participant behaves: when it arrives, how long it thinks, whether it
    loads the images."""

    arrive_s: float = 0.0  # arrivals spread uniformly over this many seconds
    think_s: float = 0.0  # mean pause before each answer (uniform, 0.5x to 1.5x)
    images: bool = False  # fetch every image not embedded in its trial (a cold browser cache)


async def _participant(
    client: _Client,
    log: ParticipantLog,
    bot_token: str,
    trials: int | None,
    pace: _Pace,
    on_answer: Callable[[int], None] | None,
) -> None:
    if pace.arrive_s:
        await asyncio.sleep(pace.arrive_s * client.rng.random())
    calls = client.report.calls
    body = {"platform": "bot", "pid": log.name, "bot_token": bot_token}
    s, ms = await client.call("POST", "/api/sessions", body)
    calls.setdefault("session", []).append(ms)
    log.participant = s["participant"]
    auth = s["token"]
    pos, total = s["next"], s["total"]
    limit = total if trials is None else min(total, trials)
    given: dict[str, Any] | None = None  # the trial an answer's reply carried
    while pos is not None and pos < limit:
        if given is None or given["position"] != pos:
            given, ms = await client.call(
                "GET", f"/api/participants/{log.participant}/trials/{pos}", auth=auth
            )
            calls.setdefault("trial", []).append(ms)
        t = given
        if pace.images and not t.get("embedded"):  # embedded images need no request
            for url in (t["query"], *t["candidates"]):
                _, ms = await client.call("GET", url, raw=True)
                calls.setdefault("image", []).append(ms)
        choice = client.rng.randrange(len(t["candidates"]))
        if pace.think_s:
            await asyncio.sleep(pace.think_s * (0.5 + client.rng.random()))
        answer = {"position": pos, "choice": choice, "rt_ms": 1000.0, "shown": t["shown"]}
        start = time.perf_counter()
        a, ms = await client.call(
            "POST", f"/api/participants/{log.participant}/answers", answer, auth
        )
        client.report.answer_ms.append(ms)
        calls.setdefault("answer", []).append(ms)
        client.report.answer_e2e_ms.append((time.perf_counter() - start) * 1000)
        log.acked[pos] = choice
        if on_answer is not None:
            on_answer(client.report.answers)
        pos = None if a["done"] else a["next"]
        given = a.get("trial")
        if client.failed:  # like a reloaded page: come back through the session endpoint
            client.failed = False
            await _resume(client, log, body)
    log.finished = True


async def _resume(client: _Client, log: ParticipantLog, body: dict[str, Any]) -> None:
    s, _ = await client.call("POST", "/api/sessions", body)
    log.resumes += 1
    if s["participant"] != log.participant or not s["resumed"]:
        log.resume_errors.append(f"{log.name}: a second session {s['participant']}")
    elif s["next"] != len(log.acked):
        log.resume_errors.append(
            f"{log.name}: resumed at trial {s['next']} after {len(log.acked)} acknowledged"
        )


async def _simulate(
    url: str,
    n: int,
    bot_token: str,
    trials: int | None,
    prefix: str,
    seed: int,
    backoff: Backoff,
    pace: _Pace,
    on_answer: Callable[[int], None] | None,
) -> LoadReport:
    report = LoadReport(
        [ParticipantLog(f"{prefix}-{i}") for i in range(n)], 0.0, [], [], Counter(), 0
    )
    host, port = _loopback(url)
    clients = [
        _Client(_Http(host, port), backoff, random.Random(f"{seed}:{i}"), report) for i in range(n)
    ]
    start = time.perf_counter()
    try:
        await asyncio.gather(
            *(
                _participant(client, log, bot_token, trials, pace, on_answer)
                for client, log in zip(clients, report.participants, strict=True)
            )
        )
    finally:
        report.seconds = time.perf_counter() - start
        for client in clients:
            await client.http.close()
    return report


def simulate(
    url: str,
    n: int,
    *,
    bot_token: str,
    trials: int | None = None,
    prefix: str = "load",
    seed: int = 0,
    backoff: Backoff | None = None,
    think_s: float = 0.0,
    arrive_s: float = 0.0,
    images: bool = False,
    on_answer: Callable[[int], None] | None = None,
) -> LoadReport:
    """Run ``n`` simulated participants at once against the service at ``url``.

    Args:
        url: base URL of a running service (keep it on 127.0.0.1).
        n: participants, all concurrent.
        trials: answer at most this many trials each (default: all).
        bot_token: the study's bot token (:func:`percalign.store.study.bot_token`), which
            makes the sessions simulated ones (platform ``bot``).
        prefix: platform ids are ``{prefix}-{i}`` (platform ``bot``).
        seed: seeds the choices and the retry jitter.
        backoff: the retry policy (default: the browser's).
        think_s: mean pause before each answer (0: as fast as the service allows).
        arrive_s: participants arrive spread uniformly over this many seconds (0: at once).
        images: fetch each trial's images, as a browser with a cold cache would (none when
            the trial embeds them).
        on_answer: called with the number of answers acknowledged so far, after each one.

    Raises:
        ServiceError: a call was refused (4xx) or kept failing past the backoff.
    """
    return asyncio.run(
        _simulate(
            url,
            n,
            bot_token,
            trials,
            prefix,
            seed,
            backoff or Backoff(),
            _Pace(arrive_s, think_s, images),
            on_answer,
        )
    )


def _loopback(url: str) -> tuple[str, int]:
    """(host, port) of an http:// URL on this machine; load is never sent anywhere else."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    local = host == "localhost" or host == "::1" or host.startswith("127.")
    if parts.scheme != "http" or not local or parts.port is None:
        raise ConfigError(
            f"Simulated load goes only to http://127.0.0.1:PORT (this machine); got {url!r}."
        )
    return host, parts.port


def audit(engine: Engine, report: LoadReport) -> Audit:
    """Compare the answers in the database with the ones ``report`` saw acknowledged."""
    names = {p.name for p in report.participants}
    with engine.connect() as c:
        people = c.execute(
            select(ParticipantRow.id, ParticipantRow.platform_pid).where(
                ParticipantRow.platform == "bot", ParticipantRow.platform_pid.in_(names)
            )
        ).all()
        ids = [pid for pid, _ in people]
        rows = c.execute(
            select(ResponseRow.participant, ResponseRow.position, ResponseRow.choice).where(
                ResponseRow.participant.in_(ids)
            )
        ).all()
    stored = {(p, pos): choice for p, pos, choice in rows}
    acked = {
        (p.participant, pos): choice for p in report.participants for pos, choice in p.acked.items()
    }
    sessions = Counter(name for _, name in people)
    return Audit(
        acknowledged=len(acked),
        stored=len(rows),
        lost=sum(stored.get(key) != choice for key, choice in acked.items()),
        unacknowledged=len(set(stored) - set(acked)),
        duplicated=len(rows) - len(stored),
        extra_sessions=sum(k - 1 for k in sessions.values()),
    )
