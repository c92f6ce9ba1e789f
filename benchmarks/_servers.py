"""Throwaway servers on 127.0.0.1 for tests and benchmarks (not part of the package: the
tests import it through ``benchmarks/`` on their path).

:class:`ServiceProcess` runs ``percalign survey serve`` in a process group of its own, so it
can be killed with SIGKILL (workers and all) and started again on the same port.
:class:`PostgresCluster` makes a private PostgreSQL cluster in a temporary folder with
Debian's ``initdb``/``pg_ctl`` (as the ``postgres`` user when run as root, which PostgreSQL
refuses), listening on loopback only, and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from percalign.errors import MissingFileError, ServiceError
from percalign.survey.servers import free_port

__all__ = ["PostgresCluster", "ServiceProcess", "free_port"]


class _Managed:
    def start(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


class ServiceProcess(_Managed):
    """``percalign survey serve STUDY`` on 127.0.0.1:``port`` with ``workers`` workers.

    Args:
        study: the study folder.
        token: the admin token (also how readiness is probed).
        workers: uvicorn worker processes.
        port: a fixed port (default: a free one, kept across restarts).
        log: file that collects the server's output (default: discarded).
        options: more ``survey serve`` options (``["--embed-images-kb", "0"]``).
    """

    def __init__(
        self,
        study: Path,
        token: str,
        workers: int = 1,
        port: int | None = None,
        log: Path | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.study = Path(study)
        self.options = list(options)
        self.token = token
        self.workers = workers
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        """Start the service and return once it answers HTTP."""
        import httpx

        cmd = [sys.executable, "-m", "percalign", "survey", "serve", str(self.study)]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        cmd += self.options
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "PERCALIGN_ADMIN_TOKEN": self.token}
        self.proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        if self.log:
            out.close()  # type: ignore[union-attr]
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"`percalign survey serve` exited with code {self.proc.returncode} "
                    f"on port {self.port}" + (f"; see {self.log}" if self.log else ".")
                )
            try:
                httpx.get(f"{self.url}/openapi.json", timeout=2).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise ServiceError(f"The survey service did not answer within {timeout:.0f} s.")

    def kill(self) -> None:
        """SIGKILL the server and its workers at once (a crash: nothing gets to clean up)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._reap()

    def close(self) -> None:
        """Stop the server gracefully (SIGINT), killing it if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):  # workers that outlived their parent
                os.killpg(self.proc.pid, signal.SIGKILL)


def _pg_bin() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        raise MissingFileError(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed; on Debian run "
            "`apt-get install postgresql`."
        )
    return Path(initdb).parent


class PostgresCluster(_Managed):
    """A private PostgreSQL server on 127.0.0.1:``port`` with trust auth, and its database.

    ``url`` is its SQLAlchemy URL. The cluster lives in a temporary folder removed by
    :meth:`close`; :meth:`stop` and :meth:`start` stop and restart the server in place.
    """

    def __init__(self, port: int | None = None, database: str = "percalign") -> None:
        self.port = port or free_port()
        self.database = database
        self.root: Path | None = None
        self.bin = _pg_bin()
        self._user: list[str] = []
        self._created = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://percalign@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [*self._user, str(self.bin / args[0]), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            raise ServiceError(f"PostgreSQL's {args[0]} failed: {tail[0]}")

    def start(self) -> PostgresCluster:
        """Create the cluster on first use, then start the server and wait for it."""
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="percalign-pg-"))
            if os.geteuid() == 0:
                import pwd

                try:
                    user = pwd.getpwnam("postgres")
                except KeyError as exc:
                    raise ServiceError(
                        "PostgreSQL refuses to run as root and there is no 'postgres' user; "
                        "install Debian's postgresql package or run as another user."
                    ) from exc
                os.chown(self.root, user.pw_uid, user.pw_gid)
                self._user = ["runuser", "-u", "postgres", "--"]
            self._run(
                "initdb",
                "-D",
                str(self.root / "data"),
                "-U",
                "percalign",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-o",
            options,
            "-l",
            log,
            "-w",
            "-t",
            "60",
            "start",
        )
        if not self._created:
            self._run(
                "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "percalign",
                self.database,
            )
            self._created = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash: no checkpoint); the data stay."""
        if self.root is not None and (self.root / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def close(self) -> None:
        """Stop the server and delete the cluster."""
        if self.root is not None:
            try:
                self.stop("immediate")
            finally:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
