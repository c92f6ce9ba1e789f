"""``study run``: from a spec to a report, one recorded, idempotent step at a time.

The steps are declared in :mod:`percalign.study.steps` and run by
:class:`~percalign.study.graph.Runner`: every step has a key, a hash of the settings and the
keys of the steps it declares. The ledger (``pipeline.json``, :mod:`percalign.study.ledger`)
records the key of each finished step; a step whose key is recorded and whose output exists
is skipped, so a re-run does only what a changed setting touches, and a run killed at any
moment resumes where it was. Outputs are written under a temporary name and renamed into
place, and the ledger is written after its step's output: a step cut short leaves nothing
that looks finished.

Folder of a study::

    study.toml      the spec (copied when --out is elsewhere)
    pipeline.json   the ledger: key, time and duration of every finished step
    runs/MODEL__LOSS/  inversion runs (IRIs, seeds, targets, manifest.json, judgments.csv)
    survey/         the survey (stimuli, plan, percalign.db): `percalign survey serve`
    scores/         alignment by judges and by people, comparisons, agreement, exclusions
    trust/          the trust analysis (RQ4), when enabled
    report/         index.html and its figures (PNG and PDF)
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign.errors import ConfigError
from percalign.study.graph import Context, Runner, Step
from percalign.study.ledger import LEDGER, Ledger, lock, sweep
from percalign.study.spec import StudySpec

if TYPE_CHECKING:
    from percalign.execution.backends import Backend, TaskProgress

__all__ = ["LEDGER", "Ledger", "Pipeline", "run_study"]

Log = Callable[[str], None]


@dataclasses.dataclass
class Pipeline:
    """One study folder and its spec; :meth:`run` does what is not yet done.

    The invert and judge steps are cut into tasks (``execution.tasks``) that ``backend`` runs:
    ``local`` (in this process), ``ray`` (a local Ray instance, or the cluster at
    ``address``), or a :class:`~percalign.execution.backends.Backend`; both execute the same
    graph of steps (``steps``, by default :data:`percalign.study.steps.STEPS`). This process
    writes every output and the ledger. ``progress`` gets the engine's progress (local
    backend only), ``on_task`` a :class:`~percalign.execution.backends.TaskProgress`
    after each task.
    """

    spec: StudySpec
    folder: Path
    log: Log = print
    progress: Callable[[Any], None] | None = None
    backend: str | Backend = "local"
    address: str | None = None
    on_task: Callable[[TaskProgress], None] | None = None
    steps: Sequence[Step] | None = None
    executed: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)

    def run(self) -> Path:
        """Run every step that is not done; return the report's path."""
        from percalign.execution.backends import get_backend
        from percalign.study.legacy_keys import OLD_KEYS
        from percalign.study.preflight import check_study
        from percalign.study.steps import STEPS

        self._check_spec()
        check_study(self.spec)  # every value a step would refuse, before any work
        tasks = self.spec.tasks
        backend = (
            get_backend(
                self.backend,
                self.address,
                cpus=tasks.cpus,
                gpus=tasks.gpus,
                retries=tasks.retries,
                workers=tasks.workers,
            )
            if isinstance(self.backend, str)
            else self.backend
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        with lock(self.folder), backend:
            sweep(self.folder)
            self._write_spec()
            context = Context(self.folder, self.log, self.progress, backend, self.on_task)
            steps = self.steps or STEPS
            runner = Runner(self.spec, steps, context, self.executed, old_keys=OLD_KEYS)
            runner.run()
        return self.folder / "report" / "index.html"

    def _check_spec(self) -> None:
        source, target = self.spec.source, self.folder / "study.toml"
        if self.spec.overrides and source is not None and source.resolve() == target.resolve():
            raise ConfigError(
                f"--set needs another --out than the spec's folder: {target} would be "
                "replaced by the spec with the overrides (write them into the file instead)."
            )

    def _write_spec(self) -> None:
        source = self.spec.source
        target = self.folder / "study.toml"
        effective = self.spec.effective_text()
        if effective is not None:
            tmp = target.with_name(".study.toml.tmp")
            tmp.write_text(effective)
            os.replace(tmp, target)
        elif source is not None and source.resolve() != target.resolve():
            tmp = target.with_name(".study.toml.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)


def run_study(
    spec: StudySpec,
    out: Path | None = None,
    *,
    log: Log = print,
    progress: Callable[[Any], None] | None = None,
    backend: str | Backend = "local",
    address: str | None = None,
    on_task: Callable[[TaskProgress], None] | None = None,
) -> Pipeline:
    """Run (or resume) the study ``spec`` in ``out`` (default: the spec's folder).

    ``backend``, ``address``, ``progress`` and ``on_task`` are as in :class:`Pipeline`.
    """
    if out is None:
        if spec.source is None:
            raise ConfigError("Give an output folder for a spec that was not read from a file.")
        out = spec.source.parent
    pipeline = Pipeline(
        spec,
        Path(out),
        log=log,
        progress=progress,
        backend=backend,
        address=address,
        on_task=on_task,
    )
    pipeline.run()
    return pipeline
