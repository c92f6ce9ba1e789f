"""The steps of a study, declared: train -> models -> invert -> judge -> survey -> bots ->
score -> trust -> report (see :mod:`percalign.study.graph` for what a declaration holds).

Each key is made from the step's declared inputs only; the keys of ``invert``, ``judge``,
``survey`` and ``bots`` are those of the hand-written pipeline they replace, so a study run
before keeps its work and its answers.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign import _provenance
from percalign.errors import ConfigError
from percalign.store.runs import gate_warnings, read_manifest, slug
from percalign.study.graph import Inputs, Step
from percalign.study.ledger import step_key
from percalign.study.spec import ModelEntry, StudySpec

if TYPE_CHECKING:
    from percalign.study.backends import Backend
    from percalign.study.jobs import Output, Task

__all__ = ["STEPS", "Models", "run_folders"]

#: the trust analysis's output format (rules per source, valid IRIs only)
_TRUST_FORMAT = 2


# ------------------------------------------------------------------------- shared helpers
def run_folders(spec: StudySpec, folder: Path) -> dict[str, tuple[str, str, Path]]:
    """Every run of the study: ``MODEL__LOSS`` -> (model, loss, its folder)."""
    return {
        f"{slug(m.name)}__{slug(loss)}": (
            m.name,
            loss,
            folder / "runs" / f"{slug(m.name)}__{slug(loss)}",
        )
        for m in spec.models
        for loss in spec.inversion.losses
    }


def _requested_device(spec: StudySpec) -> str:
    """The device asked for the model steps: ``[inversion] device``, else ``[study]``'s."""
    return spec.inversion.device or spec.study.device


def _device(spec: StudySpec) -> str:
    from percalign._device import resolve_device

    what = "[inversion] device" if spec.inversion.device else "[study] device"
    return resolve_device(_requested_device(spec), what)


def _backend(inputs: Inputs) -> Backend:
    backend = inputs.context.backend
    if backend is None:
        raise RuntimeError("the backend is opened by Pipeline.run")
    return backend


def _run_tasks(inputs: Inputs, step: str, tasks: list[Task], finished: Any) -> None:
    """Run ``tasks`` on the backend; call ``finished`` once per job key, as each ends."""
    from percalign.study.backends import TaskProgress

    backend, on_task = _backend(inputs), inputs.context.on_task
    unique = list({task.key: task for task in tasks}.values())  # asked twice, run once
    inputs.log(f"Step {step}: {len(unique)} task(s) on the {backend.name} backend")
    if on_task is not None:
        on_task(TaskProgress(step, 0, len(unique), "", 0.0))
    done: set[str] = set()
    for task, output in backend.run(unique):
        if task.key in done:
            continue
        done.add(task.key)
        if on_task is not None:
            on_task(TaskProgress(step, len(done), len(unique), task.label, output.seconds))
        finished(task, output)


# ------------------------------------------------------------------------------ train, models
def _train_key(inputs: Inputs, name: str) -> tuple[Any, ...]:
    from percalign.training import TrainConfig

    entry = next(m for m in inputs.spec.models if m.name == name)
    return ("train", name, TrainConfig(**(entry.train or {})).to_dict())


def _zoo_meta(_inputs: Inputs, name: str) -> Path:
    from percalign.training import zoo_dir

    return zoo_dir() / name / "meta.json"


def _train(inputs: Inputs, todo: list[str]) -> None:
    """Train the models the zoo lacks; a zoo model trained otherwise is refused."""
    from percalign._device import resolve_device
    from percalign.training import TrainConfig, read_meta, save_checkpoint, train

    spec = inputs.spec
    for name in todo:
        entry = next(m for m in spec.models if m.name == name)
        cfg = TrainConfig(**(entry.train or {}))
        meta_path = _zoo_meta(inputs, name)
        if meta_path.is_file():  # trained before, by this study or another
            have = read_meta(name).get("hyperparameters", {})
            want = json.loads(json.dumps(cfg.to_dict()))
            changed = sorted(k for k in want if have.get(k) != want[k])
            if changed:
                raise ConfigError(
                    f"Zoo model {name!r} was trained with other settings "
                    f"({', '.join(changed)}); give the study's model another name, or delete "
                    f"{meta_path.parent}."
                )
            continue

        def work(_part: str, cfg: Any = cfg, name: str = name) -> None:
            device = resolve_device(spec.study.device, "[study] device")
            net, meta, kept = train(cfg, device=device)
            save_checkpoint(name, net, meta, kept)

        inputs.run_each([name], work)


@dataclass
class Models:
    """The loaded models of a study, their paper-table labels, and how tasks load them."""

    models: dict[str, Any]
    labels: dict[str, tuple[str, str]]
    entries: dict[str, ModelEntry]

    def id(self, name: str) -> dict[str, Any]:
        """What identifies a model in keys: its name, weights and weights' SHA-256."""
        m = self.models[name]
        return {"name": name, "weights": m.spec.weights, "sha256": m.weights_sha256}


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


def _load_models(inputs: Inputs, _parts: list[str]) -> Models:
    from percalign.models import load
    from percalign.training.zoo import ZooSource, read_meta

    spec, zoo = inputs.spec, ZooSource()
    found = Models({}, {}, {})
    for entry in spec.models:
        found.models[entry.name] = load(entry.name, weights=entry.weights, device=_device(spec))
        meta = read_meta(entry.name) if zoo.owns(entry.name) else None
        found.labels[entry.name] = _model_labels(entry, meta)
        found.entries[entry.name] = entry
    return found


# ------------------------------------------------------------------------------ invert, judge
def _runs(inputs: Inputs) -> list[str]:
    return list(run_folders(inputs.spec, inputs.folder))


def _invert_key(inputs: Inputs, part: str) -> tuple[Any, ...]:
    spec = inputs.spec
    name, loss, _ = run_folders(spec, inputs.folder)[part]
    models: Models = inputs.value("models")
    images = dataclasses.asdict(spec.images)
    settings = spec.inversion.key_settings()
    return ("invert", models.id(name), images, settings, loss, spec.study.seed)


def _run_folder(inputs: Inputs, part: str) -> Path:
    return run_folders(inputs.spec, inputs.folder)[part][2]


def _invert(inputs: Inputs, todo: list[str]) -> None:
    """One backend call for every run to do; each run folder written once its tasks are in."""
    from percalign.study.jobs import ModelRef
    from percalign.study.plan import (
        InversionRun,
        inversion_tasks,
        save_inversion_run,
        target_images,
    )

    spec, models = inputs.spec, inputs.value("models")
    backend = _backend(inputs)
    device = backend.device(_requested_device(spec))
    runs_of = run_folders(spec, inputs.folder)
    data: dict[str, Any] = {}
    runs: list[InversionRun] = []
    tasks: list[Task] = []
    for part in todo:
        name, loss, folder = runs_of[part]
        model = models.models[name]
        if name not in data:  # one set per model: sent once for all its runs
            data[name] = target_images(spec, model)
        key = inputs.own_key(part)
        run = InversionRun(part, key, folder, name, model, data[name][0], len(data[name][2]))
        source = (
            model
            if backend.in_process
            else ModelRef(name, models.entries[name].weights, model.weights_sha256)
        )
        progress = inputs.context.progress if backend.in_process else None
        tasks += inversion_tasks(
            spec, run, source, loss, data[name], device=device, progress=progress
        )
        runs.append(run)
    outputs: dict[str, Output] = {}

    def finished(task: Task, output: Output) -> None:
        outputs[task.key] = output
        for run in runs:
            if run.ready(outputs):
                seconds = save_inversion_run(spec, run, outputs, backend.name)
                for line in gate_warnings(read_manifest(run.folder)):
                    inputs.log(f"Warning: {line}")
                tasks_of = len(run.parts) + len(run.nulls)
                inputs.finished(run.step, seconds, backend=backend.name, tasks=tasks_of)
                inputs.log(f"Step invert:{run.step}: done")

    _run_tasks(inputs, "invert", tasks, finished)


def _judge_key(inputs: Inputs, part: str) -> tuple[Any, ...]:
    spec = inputs.spec
    judges = dataclasses.asdict(spec.judges)
    return ("judge", inputs.key("invert", part), judges, spec.study.seed)


def _judgments(inputs: Inputs, part: str) -> Path:
    from percalign.study.tasks import JUDGMENTS

    return _run_folder(inputs, part) / JUDGMENTS


def _judge(inputs: Inputs, todo: list[str]) -> None:
    from percalign.judges.metric import held_out_judge, read_run
    from percalign.store.runs import write_table
    from percalign.study.jobs import Task, judge_part

    spec, jd = inputs.spec, inputs.spec.judges
    backend = _backend(inputs)
    device = backend.device(_requested_device(spec))
    by_key: dict[str, str] = {}
    tasks = []
    for part in todo:
        folder = _run_folder(inputs, part)
        key = inputs.own_key(part)
        by_key[key] = part
        held = held_out_judge(read_manifest(folder))
        names = [n for n in jd.names if n != held]
        if held in jd.names:
            inputs.log(f"Step judge:{part}: {held} held out (it is the run's adversary)")
        settings = {"names": names, "k": jd.k, "seed": spec.study.seed, "device": device}
        tasks.append(Task(key, f"judge {part}", judge_part, (read_run(folder),), settings))

    def finished(task: Task, output: Output) -> None:
        part = by_key[task.key]
        write_table(output.value, _judgments(inputs, part))
        inputs.finished(part, output.seconds, backend=backend.name, tasks=1)
        inputs.log(f"Step judge:{part}: done")

    _run_tasks(inputs, "judge", tasks, finished)


# ----------------------------------------------------------------------------- survey, bots
def _survey_runs(inputs: Inputs) -> list[tuple[str, Path]]:
    """The runs people are asked about: those of ``[survey] losses`` (default: every loss)."""
    spec = inputs.spec
    return [
        (part, folder)
        for part, (_, loss, folder) in run_folders(spec, inputs.folder).items()
        if loss in (spec.survey.losses or [loss])
    ]


def _survey_key(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    spec = inputs.spec
    invert = [inputs.key("invert", part) for part, _ in _survey_runs(inputs)]
    return ("survey", invert, dataclasses.asdict(spec.survey), spec.study.seed)


def _build_survey(inputs: Inputs, todo: list[str]) -> None:
    from percalign.survey.build import build_survey

    spec, folder = inputs.spec, inputs.folder / "survey"
    sv = spec.survey

    def work(_part: str) -> None:
        answers = answer_digest(folder)[0]
        if answers:
            raise ConfigError(
                f"The survey settings or its IRIs changed, but {folder} already holds "
                f"{answers} answers; run the changed study with another --out (answers "
                "are never overwritten)."
            )
        build_survey(
            folder,
            [f for _, f in _survey_runs(inputs)],
            database=sv.database,
            overwrite=True,
            practice=sv.practice,
            min_catch_accuracy=spec.exclusions.min_catch_accuracy,
            design=sv.design,
            foil=sv.foil,
            k=sv.k,
            trials_per_participant=sv.trials_per_participant,
            judgments_per_item=sv.judgments_per_item,
            catch_rate=sv.catch_rate,
            repeat_rate=sv.repeat_rate,
            include_invalid=sv.include_invalid,
            seed=spec.study.seed,
        )

    inputs.run_each(todo, work)


def answer_digest(survey: Path) -> tuple[int, str]:
    """(answers, a hash of who chose what where): changes whenever an answer arrives."""
    if not (survey / "plan.json").is_file():
        return (0, "")
    from percalign.store.study import read_answers

    rows = read_answers(survey)[["participant", "trial", "choice"]].values.tolist()
    return (len(rows), step_key([tuple(r) for r in rows]))


def _run_bots(inputs: Inputs, todo: list[str]) -> None:
    from percalign.judges import Bot, get_judge
    from percalign.store.study import bot_token
    from percalign.study.serve import local_survey
    from percalign.survey.bots import run_bots

    spec, folder = inputs.spec, inputs.folder / "survey"
    bots = spec.bots

    def work(_part: str) -> None:
        judge = get_judge(bots.judge)
        simulated = [
            Bot(judge, lapse=bots.lapse, temperature=bots.temperature, seed=spec.study.seed + i)
            for i in range(bots.n)
        ]
        with local_survey(folder) as url:
            run_bots(url, simulated, prefix="simulated", bot_token=bot_token(folder))

    inputs.run_each(todo, work)


# ------------------------------------------------------------------------ score, trust, report
def _score_key(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    spec = inputs.spec
    return (
        "score",
        list(inputs.keys("judge").values()),
        inputs.key("survey"),
        answer_digest(inputs.folder / "survey"),
        spec.section("exclusions"),
        spec.section("scoring"),
        spec.judges.metric,
        inputs.value("models").labels,
    )


def _score(inputs: Inputs, todo: list[str]) -> None:
    from percalign.study.scores import score_study

    spec = inputs.spec
    runs = {(m, loss): f for m, loss, f in run_folders(spec, inputs.folder).values()}
    labels = inputs.value("models").labels
    inputs.run_each(todo, lambda _p: score_study(spec, inputs.folder, runs, labels))


def _trust_models(spec: StudySpec) -> list[str]:
    return spec.trust.models or [m.name for m in spec.models]


def _trust_key(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    spec = inputs.spec
    tr, models = spec.trust, inputs.value("models")
    return (
        "trust",
        _TRUST_FORMAT,
        [models.id(n) for n in _trust_models(spec)],
        dataclasses.asdict(tr),
        tr.judges or spec.judges.names,
        spec.images.source,
        tr.config(spec.inversion, spec.study.seed).to_dict(),
        spec.inversion.layers[0],
        spec.scoring.n_boot,
    )


def _trust(inputs: Inputs, todo: list[str]) -> None:
    from percalign.judges import get_judges
    from percalign.trust import analyze

    spec, models = inputs.spec, inputs.value("models")
    tr, inv = spec.trust, spec.inversion

    def work(_part: str) -> None:
        analyze(
            inputs.folder / "trust",
            [models.models[n] for n in _trust_models(spec)],
            images=spec.images.source,
            split=tr.split,
            n_images=tr.n_images,
            max_inputs=tr.max_inputs,
            judges=get_judges(tr.judges or spec.judges.names, device=_device(spec)),
            metric=tr.metric,
            seeds=tr.seeds,
            layer=inv.layers[0],
            config=tr.config(inv, spec.study.seed),
            n_boot=spec.scoring.n_boot,
            overwrite=True,
            progress=inputs.context.progress,
            log=inputs.log,
        )

    inputs.run_each(todo, work)


def _report_key(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    return ("report", inputs.every_key(), _provenance.code_version())


def _report(inputs: Inputs, todo: list[str]) -> None:
    from percalign.report import build_report

    inputs.run_each(todo, lambda _p: build_report(inputs.folder))


_DEVICE = ("study.device", "inversion.device")

#: the study's steps; the runner orders them by what each reads
STEPS: tuple[Step, ...] = (
    Step(
        "train",
        settings=("models", "study.device"),
        key=_train_key,
        output=_zoo_meta,
        run=_train,
        parts=lambda i: [m.name for m in i.spec.models if m.train is not None],
    ),
    Step(
        "models",
        reads=("train",),
        settings=("models", *_DEVICE),
        run=_load_models,
        recorded=False,
    ),
    Step(
        "invert",
        reads=("models",),
        settings=("models", "images", "inversion", "study.seed", "tasks", *_DEVICE),
        key=_invert_key,
        output=lambda i, p: _run_folder(i, p) / "manifest.json",
        run=_invert,
        parts=_runs,
    ),
    Step(
        "judge",
        reads=("invert",),
        settings=("models", "inversion", "judges", "study.seed", "study.device"),
        key=_judge_key,
        output=_judgments,
        run=_judge,
        parts=_runs,
    ),
    Step(
        "survey",
        reads=("invert",),
        settings=("models", "inversion", "survey", "exclusions", "study.seed"),
        key=_survey_key,
        output=lambda i, _p: i.folder / "survey" / "plan.json",
        run=_build_survey,
        enabled=lambda i: i.spec.survey.enabled,
    ),
    Step(
        "bots",
        reads=("survey",),
        settings=("bots", "survey.enabled", "study.seed"),
        key=lambda i, _p: ("bots", i.key("survey"), dataclasses.asdict(i.spec.bots)),
        output=lambda i, _p: i.folder / "survey",
        run=_run_bots,
        enabled=lambda i: i.spec.survey.enabled and i.spec.bots.n > 0,
    ),
    Step(
        "score",
        reads=("models", "judge", "survey", "bots"),
        settings=("models", "inversion", "judges", "exclusions", "scoring", "study.seed"),
        key=_score_key,
        output=lambda i, _p: i.folder / "scores" / "summary.json",
        run=_score,
    ),
    Step(
        "trust",
        reads=("models",),
        settings=("models", "trust", "judges", "images", "inversion", "scoring", "study"),
        key=_trust_key,
        output=lambda i, _p: i.folder / "trust" / "trust.json",
        run=_trust,
        enabled=lambda i: i.spec.trust.enabled,
    ),
    Step(
        "report",
        reads=("train", "invert", "judge", "survey", "bots", "score", "trust"),
        key=_report_key,
        output=lambda i, _p: i.folder / "report" / "index.html",
        run=_report,
    ),
)
