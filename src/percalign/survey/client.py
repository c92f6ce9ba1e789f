"""How programs talk to the survey service: the retry policy the browser page also follows.

A request is retried on network errors, 5xx and 429, after a capped exponential backoff with
jitter (so clients cut off together by a restart do not all come back at once), waiting at
least the server's ``Retry-After``. A 4xx is final. Answers are resent unchanged, and the
service stores each one once, so retrying is always safe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from percalign._checks import check_float, check_int

__all__ = ["Backoff", "refusal", "retryable"]


@dataclass(frozen=True)
class Backoff:
    """Retry delays: ``base_s * 2**attempt``, capped at ``cap_s``, times a jitter in
    [0.5, 1.5); ``tries`` attempts in all (the defaults keep trying for about two minutes).

    >>> b = Backoff(tries=4, base_s=1.0, cap_s=3.0)
    >>> [round(b.delay(a, random.Random(0)), 2) for a in range(3)]
    [1.34, 2.69, 4.03]
    """

    tries: int = 20
    base_s: float = 0.25
    cap_s: float = 8.0

    def __post_init__(self) -> None:
        check_int("Backoff", "tries", self.tries, low=1)
        check_float("Backoff", "base_s", self.base_s, low=0.0)
        check_float("Backoff", "cap_s", self.cap_s, low=0.0)

    def delay(self, attempt: int, rng: random.Random, retry_after: Any = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 0); ``retry_after`` is the
        server's Retry-After header, if any."""
        wait = min(self.cap_s, self.base_s * 2**attempt) * (0.5 + rng.random())
        try:
            hint = float(retry_after) if retry_after is not None else 0.0
        except ValueError:  # an HTTP date: not sent by this service
            hint = 0.0
        return max(wait, min(hint, self.cap_s))


def retryable(status: int) -> bool:
    """Whether a response with this status is worth sending again."""
    return status >= 500 or status == 429


def refusal(response: Any) -> str:
    """The service's one-line reason for a 4xx (its JSON ``error``), or the status line."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
