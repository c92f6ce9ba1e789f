"""How much the participant service takes from one client and from everyone: rate limits on
session starts, and the settings of a served study."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from percalign._checks import check_float, check_int

__all__ = ["RateLimit", "ServeSettings"]


@dataclass(frozen=True)
class ServeSettings:
    """How a study is served (``percalign survey serve`` options).

    Attributes:
        prolific_study: the Prolific study id; a Prolific link with another STUDY_ID is
            refused.
        plain_links: accept participants from a plain link (no platform parameters); turn
            off when the study runs on a platform, so nobody takes part twice that way.
        starts_per_client: session starts one client address may make in a burst ...
        client_refill_s: ... and the seconds it takes to earn one more.
        starts_burst: session starts all clients together may make in a burst ...
        starts_per_s: ... and the sustained rate after it.
        body_timeout_s: seconds a client has to send its whole request body.
        abandon_after_min: minutes without an answer after which a session gives up its
            slot to the next participant (its answers are kept, marked ``abandoned``).
        unanswered_after_min: minutes after which a session that never answered (started,
            then left, or turned away by a flood) gives up its slot; it can still come back.
        close_when_covered: close the study once every item has its R judgments from
            completed participants.
        embed_kb: a trial whose images are each at most this many KiB carries them in its
            reply (as ``data:`` URLs), so showing it needs no image request; 0 never embeds.
    """

    prolific_study: str | None = None
    plain_links: bool = True
    starts_per_client: int = 20
    client_refill_s: float = 3.0
    starts_burst: int = 100
    starts_per_s: float = 10.0
    body_timeout_s: float = 10.0
    abandon_after_min: float = 30.0
    unanswered_after_min: float = 5.0
    close_when_covered: bool = False
    embed_kb: float = 64.0

    def __post_init__(self) -> None:
        owner = "ServeSettings"
        check_int(owner, "starts_per_client", self.starts_per_client, low=1)
        check_float(owner, "client_refill_s", self.client_refill_s, low=0.001)
        check_int(owner, "starts_burst", self.starts_burst, low=1)
        check_float(owner, "starts_per_s", self.starts_per_s, low=0.001)
        check_float(owner, "body_timeout_s", self.body_timeout_s, low=0.0)
        check_float(owner, "abandon_after_min", self.abandon_after_min, low=0.001)
        check_float(owner, "unanswered_after_min", self.unanswered_after_min, low=0.001)
        check_float(owner, "embed_kb", self.embed_kb, low=0.0)


class RateLimit:
    """Token buckets: one per client address and one for all clients together.

    ``take(client)`` spends one token from both and returns 0, or returns the seconds until
    a token is there (nothing is spent). Kept per worker process: with several workers the
    limits add up. Clients with no address (in-process tests) share one bucket.
    """

    def __init__(self, settings: ServeSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)
        self._all = (float(settings.starts_burst), clock())

    @staticmethod
    def _level(bucket: tuple[float, float], rate: float, cap: float, t: float) -> float:
        tokens, at = bucket
        return min(cap, tokens + (t - at) * rate)

    def take(self, client: str) -> float:
        s = self.settings
        client_rate = 1 / s.client_refill_s
        with self._lock:
            t = self.clock()
            mine = self._level(
                self._clients.get(client, (s.starts_per_client, t)),
                client_rate,
                s.starts_per_client,
                t,
            )
            everyone = self._level(self._all, s.starts_per_s, s.starts_burst, t)
            if mine < 1 or everyone < 1:
                return max((1 - mine) / client_rate, (1 - everyone) / s.starts_per_s, 0.001)
            self._clients[client] = (mine - 1, t)
            self._all = (everyone - 1, t)
            if len(self._clients) > 100_000:  # forget full buckets: they are the default
                self._clients = {
                    k: v for k, v in self._clients.items() if v[0] < s.starts_per_client - 1
                }
            return 0.0
