"""Where the study's tasks run: in this process one after the other, in local worker
processes, or as Ray tasks.

A backend takes a list of :class:`~percalign.execution.tasks.Task` and yields ``(task,
output)`` as each finishes. Tasks only compute; the caller writes each result once, under
the task's key, so a task that Ray re-runs after its worker died changes nothing. The Ray
backend sends each large argument shared by several tasks to the object store once, asks for
``cpus`` and ``gpus`` per task, and lets Ray retry a task whose worker or machine was lost
(``retries`` times); an error raised by percalign itself is not retried and comes back as
itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from percalign.errors import ConfigError, PercalignError, ServiceError

if TYPE_CHECKING:
    from percalign.execution.tasks import Output, Task

__all__ = ["BACKENDS", "Backend", "LocalBackend", "RayBackend", "TaskProgress", "get_backend"]

BACKENDS = ("local", "ray")
RAY_INSTALL = "pip install 'percalign[ray]'"


@dataclass(frozen=True)
class TaskProgress:
    """What the task progress callback receives after each task of a step.

    Attributes:
        step: the step the tasks belong to (``invert``, ``judge``).
        done: tasks finished so far; total: tasks of the step.
        label: the task that just finished; seconds: how long it computed.
    """

    step: str
    done: int
    total: int
    label: str
    seconds: float


class Backend(Protocol):
    """Runs tasks; a context manager that releases what it started."""

    name: str
    #: tasks run in the caller's process (so they may take an in-process progress callback)
    in_process: bool

    def device(self, requested: str) -> str:
        """The device tasks should use, given the spec's device (``auto``, ``cpu``, ``cuda``)."""
        ...

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Output]]:
        """Run ``tasks``; yield each with its output as it finishes."""
        ...

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...


class LocalBackend:
    """Runs tasks on this machine: in this process in the order given (``workers=1``), or in
    ``workers`` processes of their own, each using ``threads`` of torch's CPU threads.

    Small networks on a CPU keep one thread busy better than several: on 2 idle cores the
    demo took 241 s with two processes of one thread each, 325 s in one process of two
    threads. The processes start once (spawned, so nothing of this process's state is shared)
    and serve every step's tasks until the backend is closed; a task there loads its model by
    name, as on Ray.

    Args:
        workers: processes; 0 means one per ``threads`` CPUs this process may use.
        threads: torch's CPU threads in each worker process (in-process tasks keep torch's
            default).
    """

    name = "local"

    def __init__(self, workers: int = 1, *, threads: int = 1) -> None:
        self.threads = max(1, threads)
        self.workers = workers if workers > 0 else max(1, available_cpus() // self.threads)
        self.in_process = self.workers == 1
        self._pool: Any = None

    def device(self, requested: str) -> str:
        from percalign._device import resolve_device

        return resolve_device(requested, "the study's device")

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Output]]:
        if self.in_process:
            for task in tasks:
                yield task, task.fn(*task.args, **task.kwargs)
            return
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pool = self._open()
        pending = {pool.submit(_execute, t.fn, *t.args, **t.kwargs): t for t in tasks}
        try:
            for future in as_completed(pending):
                task = pending[future]
                try:
                    output = future.result()
                except BrokenProcessPool:
                    raise ServiceError(
                        f"A worker process died while the local backend ran {task.label!r} "
                        "(killed, or out of memory); finished steps are kept: run the study "
                        "again to resume, with fewer [tasks] workers if memory ran out."
                    ) from None
                yield task, output
        finally:
            for future in pending:
                future.cancel()

    def _open(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        return self._pool

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def available_cpus() -> int:
    """The CPUs this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line error naming the install command."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"The Ray backend needs the optional package ray; install it: {RAY_INSTALL}"
        ) from None
    return ray


def _execute(fn: Any, *args: Any, **kwargs: Any) -> Output:
    """What every Ray task runs (one remote function; the task name says what it does)."""
    return fn(*args, **kwargs)  # type: ignore[no-any-return]


class RayBackend:
    """Runs tasks on a Ray cluster: an existing connection, ``address``, or a local instance.

    Args:
        address: ``None`` starts a local Ray instance (all of this machine's CPUs and GPUs)
            unless this process is already connected (``ray.init`` called before), which is
            then used as is; ``auto`` joins the cluster started here with ``ray start``;
            ``HOST:PORT`` or ``ray://HOST:10001`` reach a remote one.
        cpus: CPUs each task asks for.
        gpus: GPUs each task asks for (fractions share one: 0.25 runs four tasks per GPU);
            ``None``: 1 when the cluster has GPUs and the spec does not say ``cpu``, else 0.
        retries: times a task is re-run when its worker process or machine dies.

    Checks that ``ray`` is installed when made, so a missing extra fails before any work;
    connects (or starts Ray) when it first has tasks to run.
    """

    name = "ray"
    in_process = False

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus: float = 1.0,
        gpus: float | None = None,
        retries: int = 3,
    ) -> None:
        self.address = address
        self.cpus = cpus
        self.gpus = gpus
        self.retries = retries
        self._ray = import_ray()
        self._started = False
        self._remote: Any = None

    def _connect(self) -> Any:
        ray = self._ray
        if not ray.is_initialized():
            local = self.address is None
            try:
                ray.init(
                    address="local" if local else self.address,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    **({"include_dashboard": False} if local else {}),
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ServiceError(
                    f"Could not start or reach Ray at {self.address or 'a local instance'!r}: "
                    f"{first} (start a cluster with `ray start --head` and pass --address auto, "
                    "or leave out --address for a local instance)."
                ) from None
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(_execute)
        return ray

    def device(self, requested: str) -> str:
        """``cuda`` (the GPU Ray assigns the task) when tasks ask for GPUs, else ``cpu``.

        ``auto`` takes GPUs when the cluster has them; ``cuda`` on a cluster without GPUs is
        refused (the tasks would wait for ever, or run on CPUs unasked).
        """
        ray = self._connect()
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        wants_gpu = requested.startswith("cuda")
        if wants_gpu and not has_gpu:
            raise ConfigError(
                f"The study's device is {requested!r}, but the Ray cluster has no GPUs; use "
                "device = 'auto' or 'cpu', or join a node with GPUs."
            )
        if self.gpus is None:
            self.gpus = 1.0 if has_gpu and requested != "cpu" else 0.0
        self._check_fits(ray)
        return "cuda" if self.gpus > 0 else "cpu"

    def _check_fits(self, ray: Any) -> None:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        gpus = self.gpus or 0.0
        if not any(r.get("CPU", 0) >= self.cpus and r.get("GPU", 0) >= gpus for r in nodes):
            most = max((r.get("CPU", 0), r.get("GPU", 0)) for r in nodes) if nodes else (0, 0)
            raise ConfigError(
                f"No machine of the Ray cluster has {self.cpus:g} CPUs and {gpus:g} GPUs for a "
                f"task (the largest has {most[0]:g} CPUs, {most[1]:g} GPUs); lower [tasks] "
                "cpus or gpus."
            )

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Output]]:
        ray = self._connect()
        if self.gpus is None:
            self.device("auto")
        shared = _shared_args(ray, tasks)
        pending: dict[Any, Task] = {}
        try:
            for task in tasks:
                args = [shared.get(id(a), a) for a in task.args]
                ref = self._remote.options(
                    name=task.label,
                    num_cpus=self.cpus,
                    num_gpus=self.gpus,
                    max_retries=self.retries,
                    retry_exceptions=False,
                ).remote(task.fn, *args, **task.kwargs)
                pending[ref] = task
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    yield task, self._get(ray, ref, task)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def _get(self, ray: Any, ref: Any, task: Task) -> Output:
        try:
            return ray.get(ref)  # type: ignore[no-any-return]
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, PercalignError):
                raise exc.cause from None
            raise
        except ray.exceptions.RayError as exc:
            raise ServiceError(
                f"Task {task.label!r} failed on Ray after {self.retries} retries "
                f"({type(exc).__name__}); finished steps are kept: run the study again to "
                "resume."
            ) from None

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def _shared_args(ray: Any, tasks: Sequence[Task]) -> dict[int, Any]:
    """Object-store references for arguments that several tasks share (sent once)."""
    seen: dict[int, Any] = {}
    counts: dict[int, int] = {}
    for task in tasks:
        for arg in task.args:
            if not isinstance(arg, (str, int, float, bool, type(None))):
                counts[id(arg)] = counts.get(id(arg), 0) + 1
                seen[id(arg)] = arg
    return {key: ray.put(seen[key]) for key, n in counts.items() if n > 1}


def get_backend(
    name: str,
    address: str | None = None,
    *,
    cpus: float = 1.0,
    gpus: float | None = None,
    retries: int = 3,
    workers: int = 1,
) -> Backend:
    """The backend called ``name`` (``local`` or ``ray``); ``address`` is for Ray only,
    ``workers`` for the local backend only (its processes; ``cpus`` are each one's threads)."""
    if name == "local":
        if address is not None:
            raise ConfigError("--address is for the Ray backend; add --backend ray.")
        return LocalBackend(workers, threads=max(1, int(cpus)))
    if name == "ray":
        return RayBackend(address, cpus=cpus, gpus=gpus, retries=retries)
    from percalign.errors import unknown_name

    raise unknown_name("backend", name, BACKENDS)
