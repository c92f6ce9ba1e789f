"""Serve a study's survey on 127.0.0.1 for the length of a ``with`` block (simulated runs)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from percalign.errors import ServiceError
from percalign.survey.servers import free_port

__all__ = ["local_survey", "serve_app"]


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a free loopback port in a thread; yield its URL.

    The server stops when the block ends.
    """
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="percalign-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServiceError("The local server did not start.")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def local_survey(study: Path, admin_token: str | None = None) -> Iterator[str]:
    """Serve ``study`` on 127.0.0.1 for the length of the block; yield its base URL.

    The real service over real HTTP: simulated participants (``run_bots``) take the same path
    as people.
    """
    from percalign.survey.app import create_app

    with serve_app(create_app(Path(study), admin_token or secrets.token_urlsafe(16))) as url:
        yield url
