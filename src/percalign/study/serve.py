"""Serve a study's survey on 127.0.0.1 for the length of a ``with`` block (simulated runs)."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from percalign.errors import ServiceError

__all__ = ["local_survey"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_survey(study: Path, admin_token: str | None = None) -> Iterator[str]:
    """Serve ``study`` with uvicorn on a free loopback port in a thread; yield its base URL.

    The real service over real HTTP: simulated participants (``run_bots``) take the same path
    as people. The server stops when the block ends.
    """
    import uvicorn

    from percalign.survey.app import create_app

    app = create_app(Path(study), admin_token or secrets.token_urlsafe(16))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="percalign-survey", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServiceError(f"The survey server for {str(study)!r} did not start.")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
