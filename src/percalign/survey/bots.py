"""Simulated participants that take the survey through its real HTTP API."""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from percalign.errors import ServiceError
from percalign.survey.client import Backoff, refusal, retryable

__all__ = ["run_bots"]


def _request(
    client: httpx.Client,
    method: str,
    url: str,
    backoff: Backoff,
    rng: random.Random,
    **kw: Any,
) -> Any:
    """One call with the browser's retry policy; a 4xx raises with the service's reason."""
    for attempt in range(backoff.tries):
        hint = None
        try:
            r = client.request(method, url, **kw)
            if not retryable(r.status_code):
                if r.status_code >= 400:
                    raise ServiceError(f"The survey service refused {method} {url}: {refusal(r)}")
                return r.json() if "json" in r.headers.get("content-type", "") else r.content
            hint = r.headers.get("retry-after")
        except httpx.TransportError:
            pass
        if attempt + 1 < backoff.tries:
            time.sleep(backoff.delay(attempt, rng, hint))
    raise ServiceError(
        f"The survey service at {client.base_url} did not answer {method} {url} "
        f"after {backoff.tries} tries; is `percalign survey serve` running there?"
    )


def _reachable(client: httpx.Client, tries: int = 3) -> None:
    """Fail at once when nothing answers at the URL (the retry policy is for a service that
    was reached and restarts, not for a wrong URL)."""
    for attempt in range(tries):
        try:
            client.get("/api/admin/progress")  # any answer, even a refusal, is a server
            return
        except httpx.TransportError as exc:
            reason = type(exc).__name__
            if attempt + 1 < tries:
                time.sleep(0.5 * (attempt + 1))
    raise ServiceError(
        f"Nothing answers at {client.base_url} ({reason} after {tries} tries); start the "
        "service with `percalign survey serve STUDY`, or check --url."
    )


def _image(url: str, cache: dict[bytes, Any], call: Any) -> Any:
    # every trial has its own image URLs, so decoded images are kept by content
    data = call("GET", url)
    key = hashlib.sha256(data).digest()
    if key not in cache:
        import torch
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("L" if img.mode == "L" else "RGB"), dtype=np.float32)
        t = torch.from_numpy(arr / 255.0)
        cache[key] = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return cache[key]


def _alike(images: Sequence[Any]) -> list[Any]:
    """A trial's images with one channel count: grey ones as RGB where any is RGB (a judge
    compares images of one format; a plan keeps a trial's images in one run, so this only
    matters for a study built before that rule)."""
    channels = max(int(i.shape[0]) for i in images)
    return [i.expand(channels, -1, -1) if i.shape[0] != channels else i for i in images]


def run_bots(
    base_url: str,
    bots: Sequence[Any],
    prefix: str = "bot",
    *,
    bot_token: str,
    backoff: Backoff | None = None,
    seed: int = 0,
) -> dict[str, int]:
    """Run each bot (a :class:`~percalign.judges.Bot`) through the whole survey.

    ``bot_token`` is the study's (:func:`percalign.store.study.bot_token`): with it the
    server marks the sessions as simulated (platform ``bot``). Every call retries like the
    browser does (``backoff``; ``seed`` seeds its jitter), so a bot that meets a server
    restart resumes where it was. Bots stop starting once the study is closed (a sequential
    survey closes when its questions are decided). Returns answers given per bot.
    """
    import torch

    backoff = backoff or Backoff()
    rng = random.Random(seed)
    done: dict[str, int] = {}
    cache: dict[bytes, Any] = {}
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(30, connect=5)) as client:
        _reachable(client)

        def call(method: str, url: str, **kw: Any) -> Any:
            return _request(client, method, url, backoff, rng, **kw)

        for i, bot in enumerate(bots):
            name = f"{prefix}-{i}"
            body = {"platform": "bot", "pid": name, "bot_token": bot_token}
            try:
                s = call("POST", "/api/sessions", json=body)
            except ServiceError:
                if call("GET", "/api/study")["open"]:
                    raise
                break  # the study closed itself (its questions are decided): no more bots
            pid, pos, total = s["participant"], s["next"], s["total"]
            auth = {"Authorization": f"Bearer {s['token']}"}
            answered = 0
            t = None  # the trial the last answer's reply carried
            while pos is not None and pos < total:
                if t is None or t["position"] != pos:
                    t = call("GET", f"/api/participants/{pid}/trials/{pos}", headers=auth)
                if t.get("kind") == "screen":  # every IRI matched to one of the targets
                    shown = _alike([_image(u, cache, call) for u in t["candidates"] + t["iris"]])
                    targets = torch.stack(shown[: len(t["candidates"])])
                    assignments = []
                    for j, image in enumerate(shown[len(t["candidates"]) :]):
                        if hasattr(bot, "start_trial"):
                            bot.start_trial(pos + j)
                        iri = image.unsqueeze(0)
                        assignments.append(int(bot.match(iri, targets.unsqueeze(0))[0]))
                    a = call(
                        "POST",
                        f"/api/participants/{pid}/screens",
                        json={"position": pos, "assignments": assignments, "shown": t["shown"]},
                        headers=auth,
                    )
                    answered += len(assignments)
                    pos = None if a["done"] else a["next"]
                    t = a.get("trial")
                    continue
                shown = _alike([_image(u, cache, call) for u in [t["query"], *t["candidates"]]])
                query, cands = shown[0].unsqueeze(0), torch.stack(shown[1:])
                if hasattr(bot, "start_trial"):  # draws that survive a resume
                    bot.start_trial(pos)
                if len(cands) == 2:
                    choice = int(bot.two_afc(query, cands[:1], cands[1:])[0])
                else:
                    choice = int(bot.match(query, cands.unsqueeze(0))[0])
                a = call(
                    "POST",
                    f"/api/participants/{pid}/answers",
                    json={"position": pos, "choice": choice, "rt_ms": 1000.0, "shown": t["shown"]},
                    headers=auth,
                )
                answered += 1
                pos = None if a["done"] else a["next"]
                t = a.get("trial")
            done[name] = answered
    return done
