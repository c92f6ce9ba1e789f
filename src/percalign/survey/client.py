"""How programs talk to the survey service: the one retry policy, which the browser page is
rendered with (:data:`POLICY`, see :func:`percalign.survey.pages.participant_page`).

A request is retried on network errors, 5xx and 429, after a capped exponential backoff with
jitter (so clients cut off together by a restart do not all come back at once), waiting at
least the server's ``Retry-After`` (up to the cap). A 4xx is final. Answers are resent
unchanged, and the service stores each one once, so retrying is always safe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from percalign._checks import check_float, check_int

__all__ = ["POLICY", "Backoff", "refusal", "retryable"]


@dataclass(frozen=True)
class Backoff:
    """Retry delays: ``min(cap_s, base_s * 2**attempt)`` times a jitter in [0.5, 1), so no
    wait exceeds ``cap_s``; ``tries`` attempts in all (the defaults keep trying for about two
    minutes, waiting at most 12 s between tries).

    >>> b = Backoff(tries=4, base_s=1.0, cap_s=3.0)
    >>> [round(b.delay(a, random.Random(0)), 2) for a in range(4)]
    [0.92, 1.84, 2.77, 2.77]
    """

    tries: int = 20
    base_s: float = 0.25
    cap_s: float = 12.0

    def __post_init__(self) -> None:
        check_int("Backoff", "tries", self.tries, low=1)
        check_float("Backoff", "base_s", self.base_s, low=0.0)
        check_float("Backoff", "cap_s", self.cap_s, low=0.0)

    def delay(self, attempt: int, rng: random.Random, retry_after: Any = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 0); ``retry_after`` is the
        server's Retry-After header, if any."""
        wait = min(self.cap_s, self.base_s * 2**attempt) * (0.5 + 0.5 * rng.random())
        try:
            hint = float(retry_after) if retry_after is not None else 0.0
        except ValueError:  # an HTTP date: not sent by this service
            hint = 0.0
        return max(wait, min(hint, self.cap_s))

    def for_page(self) -> dict[str, int]:
        """The policy in the page's units (milliseconds), as the page's script reads it."""
        return {
            "tries": self.tries,
            "base_ms": round(self.base_s * 1000),
            "cap_ms": round(self.cap_s * 1000),
        }


#: The retry policy of the participant page and of ``survey bots``.
POLICY = Backoff()


def retryable(status: int) -> bool:
    """Whether a response with this status is worth sending again."""
    return status >= 500 or status == 429


def refusal(response: Any) -> str:
    """The service's one-line reason for a 4xx (its JSON ``error``), or the status line."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
