"""Simulated participants that take the survey through its real HTTP API."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from percalign.errors import ServiceError

__all__ = ["run_bots"]


def _request(client: httpx.Client, method: str, url: str, tries: int = 8, **kw: Any) -> Any:
    """Like the browser client: retry with backoff on network errors and 5xx/429."""
    for attempt in range(tries):
        try:
            r = client.request(method, url, **kw)
            if r.status_code < 500 and r.status_code != 429:
                r.raise_for_status()
                return r.json() if "json" in r.headers.get("content-type", "") else r.content
        except httpx.TransportError:
            pass
        time.sleep(min(0.1 * 2**attempt, 5.0))
    raise ServiceError(
        f"The survey service at {client.base_url} did not answer {method} {url} "
        f"after {tries} tries; is `percalign survey serve` running there?"
    )


def _image(client: httpx.Client, url: str, cache: dict[str, Any]) -> Any:
    if url not in cache:
        import torch
        from PIL import Image

        data = _request(client, "GET", url)
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("L" if img.mode == "L" else "RGB"), dtype=np.float32)
        t = torch.from_numpy(arr / 255.0)
        cache[url] = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return cache[url]


def run_bots(base_url: str, bots: Sequence[Any], prefix: str = "bot") -> dict[str, int]:
    """Run each bot (a :class:`~percalign.judges.Bot`) through the whole survey.

    Returns answers given per bot. A bot that meets a server restart retries and resumes.
    """
    import torch

    done: dict[str, int] = {}
    cache: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for i, bot in enumerate(bots):
            name = f"{prefix}-{i}"
            s = _request(client, "POST", "/api/sessions", json={"platform": "bot", "pid": name})
            pid, pos, total = s["participant"], s["next"], s["total"]
            answered = 0
            while pos is not None and pos < total:
                t = _request(client, "GET", f"/api/participants/{pid}/trials/{pos}")
                query = _image(client, t["query"], cache).unsqueeze(0)
                cands = torch.stack([_image(client, u, cache) for u in t["candidates"]])
                if len(cands) == 2:
                    choice = int(bot.two_afc(query, cands[:1], cands[1:])[0])
                else:
                    choice = int(bot.match(query, cands.unsqueeze(0))[0])
                a = _request(
                    client,
                    "POST",
                    f"/api/participants/{pid}/answers",
                    json={"position": pos, "choice": choice, "rt_ms": 1000.0},
                )
                answered += 1
                pos = None if a["done"] else a["next"]
            done[name] = answered
    return done
