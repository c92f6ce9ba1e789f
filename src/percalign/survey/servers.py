"""A free loopback port for servers started in-process (the study's local survey).

The test-only servers (a killable ``survey serve`` process, a throwaway PostgreSQL cluster)
and the load simulator live in ``benchmarks/_servers.py`` and ``benchmarks/_load.py``,
outside the installed package.
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
