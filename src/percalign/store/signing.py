"""What the survey service signs with a study's secret key: participants' session tokens,
the bot token, trial image URLs, and the note of when a trial was served.

Everything here is an HMAC-SHA256 under one key, so any worker and any restart computes the
same values and nothing needs a database write; the key itself is the store's to keep.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

__all__ = ["Signer"]


class Signer:
    """HMACs under the key that ``key()`` returns (asked for once, on first use).

    >>> s = Signer(lambda: b"k" * 32)
    >>> s.shown_ms("p", 3, s.shown("p", 3, 1234)), s.shown_ms("p", 4, s.shown("p", 3, 1234))
    (1234, None)
    """

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._get_key = key
        self._key: bytes | None = None

    def sign(self, message: str) -> str:
        """HMAC-SHA256 of ``message`` (hex)."""
        if self._key is None:
            self._key = self._get_key()
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def session_token(self, pid: str) -> str:
        """The secret a participant's client sends with every request."""
        return self.sign(pid)

    def bot_token(self) -> str:
        """The secret that marks simulated participants (``percalign survey bots`` computes
        it from the study database); a client cannot call itself a bot without it."""
        return self.sign("simulated participants")

    def is_bot_token(self, token: str | None) -> bool:
        # bytes: compare_digest refuses str with non-ASCII characters (a fuzzer's token)
        given = str(token or "").encode("utf-8")
        return bool(given) and hmac.compare_digest(given, self.bot_token().encode())

    def image_key(self, pid: str, position: int, index: int) -> str:
        """The unguessable part of the URL of image ``index`` of a participant's trial
        (0: the query, then the candidates in display order)."""
        return self.sign(f"image|{pid}|{position}|{index}")[:32]

    def shown(self, pid: str, position: int, now_ms: int) -> str:
        """A signed note that trial ``position`` was served at ``now_ms`` (server clock)."""
        return f"{now_ms}.{self.sign(f'shown|{pid}|{position}|{now_ms}')[:32]}"

    def shown_ms(self, pid: str, position: int, shown: str | None) -> int | None:
        """The serving time that ``shown`` records, if it is this trial's and genuine."""
        ms = (shown or "").partition(".")[0]
        if not ms.isdigit() or not hmac.compare_digest(
            str(shown), self.shown(pid, position, int(ms))
        ):
            return None
        return int(ms)
