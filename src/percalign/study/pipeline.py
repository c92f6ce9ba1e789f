"""``study run``: from a spec to a report, one recorded, idempotent step at a time.

Every step has a key: a hash of its settings and of the keys of the steps it reads. The
ledger (``pipeline.json``) records the key of each finished step; a step whose key is
recorded and whose output exists is skipped, so a re-run does only what a changed setting
touches, and a run killed at any moment resumes where it was. Outputs are written under a
temporary name and renamed into place, and the ledger is written after its step's output:
a step cut short leaves nothing that looks finished.

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
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign import _provenance
from percalign.errors import ConfigError, OutputExistsError
from percalign.store.runs import gate_warnings, read_manifest
from percalign.study.spec import ModelEntry, StudySpec

if TYPE_CHECKING:
    from percalign.study.backends import Backend, TaskProgress
    from percalign.study.jobs import ModelRef, Output, Task

__all__ = ["LEDGER", "Ledger", "Pipeline", "run_study"]

LEDGER = "pipeline.json"
_LEFTOVER = re.compile(r"^\..+\.(tmp|old)(-[0-9a-f]{8})?$")
Log = Callable[[str], None]


def step_key(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Ledger:
    """The record of finished steps in ``folder/pipeline.json`` (rewritten atomically)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LEDGER
        self.steps: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self.steps = json.loads(self.path.read_text()).get("steps", {})

    def done(self, name: str, key: str) -> bool:
        return self.steps.get(name, {}).get("key") == key

    def record(self, name: str, key: str, seconds: float, **info: Any) -> None:
        self.steps[name] = {
            "key": key,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(seconds, 3),
            **info,
        }
        tmp = self.path.with_name(f".{LEDGER}.tmp")
        tmp.write_text(json.dumps({"steps": self.steps}, indent=1) + "\n")
        os.replace(tmp, self.path)


@contextmanager
def _lock(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputExistsError(
                f"Another `percalign study run` is working in {str(folder)!r}; wait for it."
            ) from None
        yield


def _model_labels(entry: ModelEntry, meta: dict[str, Any] | None) -> tuple[str, str]:
    """(architecture, training) of a model for the paper-style table."""
    arch = entry.architecture or (meta or {}).get("arch") or entry.name
    training = entry.training
    if training is None and meta is not None:
        training = meta.get("recipe", "?")
        eps = (meta.get("hyperparameters") or {}).get("eps")
        if training in ("adv-l2", "adv-linf", "trades") and eps is not None:
            training += f" eps={eps:g}"
        if (meta.get("hyperparameters") or {}).get("augment") is False:
            training += " no-aug"
    return str(arch), str(training or "pretrained")


@dataclasses.dataclass
class Pipeline:
    """One study folder and its spec; :meth:`run` does what is not yet done.

    The invert and judge steps are cut into tasks (``study.jobs``) that ``backend`` runs:
    ``local`` (in this process), ``ray`` (a local Ray instance, or the cluster at
    ``address``), or a :class:`~percalign.study.backends.Backend`. This process writes every
    output and the ledger. ``progress`` gets the engine's progress (local backend only),
    ``on_task`` a :class:`~percalign.study.backends.TaskProgress` after each task.
    """

    spec: StudySpec
    folder: Path
    log: Log = print
    progress: Callable[[Any], None] | None = None
    backend: str | Backend = "local"
    address: str | None = None
    on_task: Callable[[TaskProgress], None] | None = None
    executed: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.ledger = Ledger(self.folder)
        self.keys: dict[str, str] = {}
        self.models: dict[str, Any] = {}
        self.labels: dict[str, tuple[str, str]] = {}
        self._open: Backend | None = None

    # ---------------------------------------------------------------- steps
    def _step(self, name: str, key: str, output: Path, work: Callable[[], Any]) -> bool:
        """Run ``work`` unless ``name`` is recorded with ``key`` and ``output`` exists."""
        self.keys[name] = key
        if self.ledger.done(name, key) and output.exists():
            return False
        self.log(f"Step {name}: running")
        started = time.perf_counter()
        work()
        self.ledger.record(name, key, time.perf_counter() - started)
        self.executed.append(name)
        return True

    def _requested_device(self) -> str:
        """The device asked for the model steps: ``[inversion] device``, else ``[study]``'s."""
        return self.spec.inversion.device or self.spec.study.device

    def _device(self) -> str:
        from percalign._device import resolve_device

        what = "[inversion] device" if self.spec.inversion.device else "[study] device"
        return resolve_device(self._requested_device(), what)

    def _train(self, entry: ModelEntry) -> None:
        from percalign._device import resolve_device
        from percalign.training import TrainConfig, read_meta, save_checkpoint, train, zoo_dir

        assert entry.train is not None
        cfg = TrainConfig(**entry.train)
        key = step_key("train", entry.name, cfg.to_dict())
        meta_path = zoo_dir() / entry.name / "meta.json"
        if meta_path.is_file():
            have = read_meta(entry.name).get("hyperparameters", {})
            want = json.loads(json.dumps(cfg.to_dict()))
            changed = sorted(k for k in want if have.get(k) != want[k])
            if changed:
                raise ConfigError(
                    f"Zoo model {entry.name!r} was trained with other settings "
                    f"({', '.join(changed)}); give the study's model another name, or delete "
                    f"{meta_path.parent}."
                )
            self.keys[f"train:{entry.name}"] = key
            return

        def work() -> None:
            device = resolve_device(self.spec.study.device, "[study] device")
            net, meta, kept = train(cfg, device=device)
            save_checkpoint(entry.name, net, meta, kept)

        self._step(f"train:{entry.name}", key, meta_path, work)

    def _load_models(self) -> None:
        from percalign.models import load
        from percalign.training.zoo import ZooSource, read_meta

        zoo = ZooSource()
        for entry in self.spec.models:
            if entry.train is not None:
                self._train(entry)
            model = load(entry.name, weights=entry.weights, device=self._device())
            self.models[entry.name] = model
            meta = read_meta(entry.name) if zoo.owns(entry.name) else None
            self.labels[entry.name] = _model_labels(entry, meta)

    def _model_id(self, name: str) -> dict[str, Any]:
        m = self.models[name]
        return {"name": name, "weights": m.spec.weights, "sha256": m.weights_sha256}

    def _runs(self) -> dict[tuple[str, str], Path]:
        from percalign.store.runs import slug

        return {
            (m.name, loss): self.folder / "runs" / f"{slug(m.name)}__{slug(loss)}"
            for m in self.spec.models
            for loss in self.spec.inversion.losses
        }

    def _todo(self, name: str, key: str, output: Path) -> bool:
        """Whether step ``name`` must run (its key is not recorded, or its output is gone)."""
        self.keys[name] = key
        return not (self.ledger.done(name, key) and output.exists())

    def _run_tasks(
        self, step: str, tasks: list[Task], finished: Callable[[Task, Output], None]
    ) -> None:
        """Run ``tasks`` on the backend; call ``finished`` once per job key, as each ends."""
        from percalign.study.backends import TaskProgress

        backend = self._backend()
        unique = list({task.key: task for task in tasks}.values())  # asked twice, run once
        self.log(f"Step {step}: {len(unique)} task(s) on the {backend.name} backend")
        if self.on_task is not None:
            self.on_task(TaskProgress(step, 0, len(unique), "", 0.0))
        done: set[str] = set()
        for task, output in backend.run(unique):
            if task.key in done:
                continue
            done.add(task.key)
            if self.on_task is not None:
                self.on_task(TaskProgress(step, len(done), len(unique), task.label, output.seconds))
            finished(task, output)

    def _backend(self) -> Backend:
        if self._open is None:
            raise RuntimeError("the backend is opened by Pipeline.run")
        return self._open

    def _invert(self) -> None:
        from percalign.study.plan import (
            InversionRun,
            inversion_tasks,
            save_inversion_run,
            target_images,
        )

        inv, images, seed = self.spec.inversion, self.spec.images, self.spec.study.seed
        settings = inv.key_settings()
        todo = []
        for (name, loss), folder in self._runs().items():
            key = step_key(
                "invert", self._model_id(name), dataclasses.asdict(images), settings, loss, seed
            )
            if self._todo(f"invert:{folder.name}", key, folder / "manifest.json"):
                todo.append((name, loss, folder, key))
        if not todo:
            return
        backend = self._backend()
        device = backend.device(self._requested_device())
        data: dict[str, Any] = {}
        runs: list[InversionRun] = []
        tasks: list[Task] = []
        for name, loss, folder, key in todo:
            model = self.models[name]
            if name not in data:  # one set per model: sent once for all its runs
                data[name] = target_images(self.spec, model)
            run = InversionRun(
                f"invert:{folder.name}", key, folder, name, model, data[name][0], len(data[name][2])
            )
            in_process = backend.in_process
            tasks += inversion_tasks(
                self.spec,
                run,
                model if in_process else self._model_ref(name),
                loss,
                data[name],
                device=device,
                progress=self.progress if in_process else None,
            )
            runs.append(run)
        outputs: dict[str, Output] = {}

        def finished(task: Task, output: Output) -> None:
            outputs[task.key] = output
            for run in runs:
                if run.ready(outputs):
                    seconds = save_inversion_run(self.spec, run, outputs, backend.name)
                    for line in gate_warnings(read_manifest(run.folder)):
                        self.log(f"Warning: {line}")
                    self._record(
                        run.step, run.key, seconds, backend.name, len(run.parts) + len(run.nulls)
                    )

        self._run_tasks("invert", tasks, finished)

    def _record(self, name: str, key: str, seconds: float, backend: str, tasks: int) -> None:
        self.ledger.record(name, key, seconds, backend=backend, tasks=tasks)
        self.executed.append(name)
        self.log(f"Step {name}: done")

    def _model_ref(self, name: str) -> ModelRef:
        """How tasks in other processes load model ``name`` (and check its weights)."""
        from percalign.study.jobs import ModelRef

        entry = next(m for m in self.spec.models if m.name == name)
        return ModelRef(name, entry.weights, self.models[name].weights_sha256)

    def _judge(self) -> None:
        from percalign.judges.metric import held_out_judge, read_run
        from percalign.store.runs import write_table
        from percalign.study.jobs import Task, judge_part
        from percalign.study.tasks import JUDGMENTS

        jd, seed = self.spec.judges, self.spec.study.seed
        todo: dict[str, Path] = {}
        for folder in self._runs().values():
            key = step_key(
                "judge", self.keys[f"invert:{folder.name}"], dataclasses.asdict(jd), seed
            )
            if self._todo(f"judge:{folder.name}", key, folder / JUDGMENTS):
                todo[key] = folder
        if not todo:
            return
        backend = self._backend()
        device = backend.device(self._requested_device())
        tasks = []
        for key, folder in todo.items():
            held = held_out_judge(read_manifest(folder))
            names = [n for n in jd.names if n != held]
            if held in jd.names:
                self.log(f"Step judge:{folder.name}: {held} held out (it is the run's adversary)")
            settings = {"names": names, "k": jd.k, "seed": seed, "device": device}
            tasks.append(
                Task(key, f"judge {folder.name}", judge_part, (read_run(folder),), settings)
            )

        def finished(task: Task, output: Output) -> None:
            folder = todo[task.key]
            write_table(output.value, folder / JUDGMENTS)
            self._record(f"judge:{folder.name}", task.key, output.seconds, backend.name, 1)

        self._run_tasks("judge", tasks, finished)

    def _survey(self) -> None:
        from percalign.survey.build import build_survey

        sv = self.spec.survey
        if not sv.enabled:
            return
        folder = self.folder / "survey"
        runs = [f for (_, loss), f in self._runs().items() if loss in (sv.losses or [loss])]
        key = step_key(
            "survey",
            [self.keys[f"invert:{r.name}"] for r in runs],
            dataclasses.asdict(sv),
            self.spec.study.seed,
        )

        def work() -> None:
            answers = _answer_count(folder)
            if answers:
                raise ConfigError(
                    f"The survey settings or its IRIs changed, but {folder} already holds "
                    f"{answers} answers; run the changed study with another --out (answers "
                    "are never overwritten)."
                )
            build_survey(
                folder,
                runs,
                database=sv.database,
                overwrite=True,
                practice=sv.practice,
                min_catch_accuracy=self.spec.exclusions.min_catch_accuracy,
                design=sv.design,
                foil=sv.foil,
                k=sv.k,
                trials_per_participant=sv.trials_per_participant,
                judgments_per_item=sv.judgments_per_item,
                catch_rate=sv.catch_rate,
                repeat_rate=sv.repeat_rate,
                include_invalid=sv.include_invalid,
                seed=self.spec.study.seed,
            )

        self._step("survey", key, folder / "plan.json", work)

    def _bots(self) -> None:
        bots = self.spec.bots
        if not self.spec.survey.enabled or bots.n == 0:
            return
        folder = self.folder / "survey"
        key = step_key("bots", self.keys["survey"], dataclasses.asdict(bots))

        def work() -> None:
            from percalign.judges import Bot, get_judge
            from percalign.store.study import bot_token
            from percalign.study.serve import local_survey
            from percalign.survey.bots import run_bots

            judge = get_judge(bots.judge)
            simulated = [
                Bot(
                    judge,
                    lapse=bots.lapse,
                    temperature=bots.temperature,
                    seed=self.spec.study.seed + i,
                )
                for i in range(bots.n)
            ]
            with local_survey(folder) as url:
                run_bots(url, simulated, prefix="simulated", bot_token=bot_token(folder))

        self._step("bots", key, folder, work)

    def _score(self) -> None:
        from percalign.study.scores import score_study

        runs = self._runs()
        key = step_key(
            "score",
            [self.keys[f"judge:{f.name}"] for f in runs.values()],
            self.keys.get("survey"),
            _answer_digest(self.folder / "survey"),
            self.spec.section("exclusions"),
            self.spec.section("scoring"),
            self.spec.judges.metric,
            self.labels,
        )

        def work() -> None:
            score_study(self.spec, self.folder, runs, self.labels)

        self._step("score", key, self.folder / "scores" / "summary.json", work)

    def _trust(self) -> None:
        tr = self.spec.trust
        if not tr.enabled:
            return
        names = tr.models or [m.name for m in self.spec.models]
        judges = tr.judges or self.spec.judges.names
        inv = self.spec.inversion
        config = tr.config(inv, self.spec.study.seed)
        key = step_key(
            "trust",
            2,  # the analysis's format: rules per source, valid IRIs only
            [self._model_id(n) for n in names],
            dataclasses.asdict(tr),
            judges,
            self.spec.images.source,
            config.to_dict(),
            inv.layers[0],
        )

        def work() -> None:
            from percalign.judges import get_judges
            from percalign.trust import analyze

            analyze(
                self.folder / "trust",
                [self.models[n] for n in names],
                images=self.spec.images.source,
                split=tr.split,
                n_images=tr.n_images,
                max_inputs=tr.max_inputs,
                judges=get_judges(judges, device=self._device()),
                metric=tr.metric,
                seeds=tr.seeds,
                layer=inv.layers[0],
                config=config,
                n_boot=self.spec.scoring.n_boot,
                overwrite=True,
                progress=self.progress,
                log=self.log,
            )

        self._step("trust", key, self.folder / "trust" / "trust.json", work)

    def _report(self) -> None:
        from percalign.report import build_report

        key = step_key("report", sorted(self.keys.items()), _provenance.code_version())
        self._step(
            "report",
            key,
            self.folder / "report" / "index.html",
            lambda: build_report(self.folder),
        )

    def run(self) -> Path:
        """Run every step that is not done; return the report's path."""
        from percalign.study.backends import get_backend

        tasks = self.spec.tasks
        backend = (
            get_backend(
                self.backend, self.address, cpus=tasks.cpus, gpus=tasks.gpus, retries=tasks.retries
            )
            if isinstance(self.backend, str)
            else self.backend
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        with _lock(self.folder), backend:
            self._open = backend
            _sweep(self.folder)
            self._write_spec()
            self._load_models()
            self._invert()
            self._judge()
            self._open = None
            self._survey()
            self._bots()
            self._score()
            self._trust()
            self._report()
        return self.folder / "report" / "index.html"

    def _write_spec(self) -> None:
        source = self.spec.source
        target = self.folder / "study.toml"
        if source is not None and source.resolve() != target.resolve():
            tmp = target.with_name(".study.toml.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)


def _sweep(folder: Path) -> None:
    """Remove what a killed run left half-written: hidden ``.NAME.tmp-*``/``.old-*`` entries."""
    for path in sorted(folder.rglob(".*"), key=lambda p: len(p.parts), reverse=True):
        if _LEFTOVER.match(path.name):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _answer_count(survey: Path) -> int:
    return int(_answer_digest(survey)[0])


def _answer_digest(survey: Path) -> tuple[int, str]:
    """(answers, a hash of who chose what where): changes whenever an answer arrives."""
    if not (survey / "plan.json").is_file():
        return (0, "")
    from percalign.store.study import read_answers

    rows = read_answers(survey)[["participant", "trial", "choice"]].values.tolist()
    return (len(rows), step_key([tuple(r) for r in rows]))


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
