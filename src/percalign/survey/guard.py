"""ASGI middleware that guards every response of the survey service.

``BodyLimit`` refuses request bodies over a size, whether announced by Content-Length or sent
in chunks, and bodies that come too slowly; ``SecurityHeaders`` adds the headers every
response should carry.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = ["BodyLimit", "SecurityHeaders"]

Scope = dict[str, Any]
Receive = Any
Send = Any


class BodyLimit:
    """Answer 413 (JSON) to a request whose body is over ``max_bytes``, and 408 to one whose
    body has not all come within ``timeout_s``.

    The body is read before the app runs (it is small by then), so a chunked upload without a
    Content-Length is cut off as soon as it passes the limit, and a client that declares a
    body and sends it slowly (or never) does not hold the request open.
    """

    def __init__(self, app: Any, max_bytes: int, timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, 413, f"Request body over {self.max_bytes} bytes.")
            return
        body = bytearray()
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.0))
            except asyncio.TimeoutError:
                await self._refuse(
                    send, 408, f"The request body did not arrive within {self.timeout_s:g} s."
                )
                return
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nothing to answer
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(send, 413, f"Request body over {self.max_bytes} bytes.")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()  # type: ignore[no-any-return]
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, status: int, message: str) -> None:
        payload = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class SecurityHeaders:
    """Add nosniff, no-referrer, no-store (unless set) and a default Content-Security-Policy
    (pages set their own, with the nonce of their inline script)."""

    def __init__(self, app: Any, default_csp: str) -> None:
        self.app = app
        self.defaults = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
            (b"content-security-policy", default_csp.encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.defaults if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
