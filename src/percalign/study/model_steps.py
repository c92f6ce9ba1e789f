"""The model steps of a study: train, models (loaded), invert and judge, declared in
:mod:`percalign.study.steps`. Invert and judge hand their tasks to the backend (local or Ray)
and write each run folder once, as its tasks come in.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign.errors import ConfigError
from percalign.store.runs import gate_warnings, read_manifest, slug
from percalign.study.graph import Inputs
from percalign.study.spec import ModelEntry, StudySpec

if TYPE_CHECKING:
    from percalign.study.backends import Backend
    from percalign.study.jobs import Output, Task

__all__ = [
    "Models",
    "invert",
    "judge",
    "judgments",
    "load_models",
    "model_device",
    "model_id",
    "model_spec",
    "run_folder",
    "run_folders",
    "run_spec",
    "runs",
    "train",
    "zoo_meta",
]


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


def requested_device(spec: StudySpec) -> str:
    """The device asked for the model steps: ``[inversion] device``, else ``[study]``'s."""
    return spec.inversion.device or spec.study.device


def model_device(spec: StudySpec) -> str:
    from percalign._device import resolve_device

    what = "[inversion] device" if spec.inversion.device else "[study] device"
    return resolve_device(requested_device(spec), what)


def open_backend(inputs: Inputs) -> Backend:
    backend = inputs.context.backend
    if backend is None:
        raise RuntimeError("the backend is opened by Pipeline.run")
    return backend


def run_tasks(inputs: Inputs, step: str, tasks: list[Task], finished: Any) -> None:
    """Run ``tasks`` on the backend; call ``finished`` once per job key, as each ends."""
    from percalign.study.backends import TaskProgress

    backend, on_task = open_backend(inputs), inputs.context.on_task
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
def model_spec(spec: StudySpec, name: str) -> StudySpec:
    """The spec as the instance of model ``name`` sees it: that ``[[models]]`` entry alone."""
    return dataclasses.replace(spec, models=tuple(m for m in spec.models if m.name == name))


def zoo_meta(_inputs: Inputs, name: str) -> Path:
    from percalign.training import zoo_dir

    return zoo_dir() / name / "meta.json"


def train(inputs: Inputs, todo: list[str]) -> None:
    """Train the models the zoo lacks, as tasks on the backend; a zoo model trained
    otherwise is refused."""
    from percalign.study.jobs import Task, train_part
    from percalign.training import TrainConfig, read_meta, save_checkpoint

    spec = inputs.spec
    backend = open_backend(inputs)
    to_train: dict[str, TrainConfig] = {}
    for name in todo:
        entry = next(m for m in spec.models if m.name == name)
        cfg = TrainConfig(**(entry.train or {}))
        meta_path = zoo_meta(inputs, name)
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
        to_train[name] = cfg
    if not to_train:
        return
    device = backend.device(spec.study.device)
    names = {inputs.own_key(name): name for name in to_train}
    tasks = [
        Task(key, f"train {name}", train_part, (to_train[name],), {"device": device})
        for key, name in names.items()
    ]

    def finished(task: Task, output: Output) -> None:
        name = names[task.key]
        save_checkpoint(name, *output.value)
        inputs.finished(name, output.seconds, backend=backend.name, tasks=1)
        inputs.log(f"Step train:{name}: done ({output.seconds:.0f} s)")

    run_tasks(inputs, "train", tasks, finished)


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


def load_models(inputs: Inputs, _parts: list[str]) -> Models:
    from percalign.models import load
    from percalign.training.zoo import ZooSource, read_meta

    spec, zoo = inputs.spec, ZooSource()
    found = Models({}, {}, {})
    for entry in spec.models:
        found.models[entry.name] = load(
            entry.name, weights=entry.weights, device=model_device(spec)
        )
        meta = read_meta(entry.name) if zoo.owns(entry.name) else None
        found.labels[entry.name] = _model_labels(entry, meta)
        found.entries[entry.name] = entry
    return found


# ------------------------------------------------------------------------------ invert, judge
def runs(inputs: Inputs) -> list[str]:
    return list(run_folders(inputs.spec, inputs.folder))


def run_spec(spec: StudySpec, part: str) -> StudySpec:
    """The spec as run ``part`` (``MODEL__LOSS``) sees it: its model and its loss alone."""
    name, loss, _ = run_folders(spec, Path())[part]
    inv = spec.inversion
    seeds = {loss: inv.loss_seeds[loss]} if inv.loss_seeds and loss in inv.loss_seeds else None
    inversion = dataclasses.replace(inv, losses=[loss], loss_seeds=seeds)
    return dataclasses.replace(model_spec(spec, name), inversion=inversion)


def model_id(inputs: Inputs, part: str) -> tuple[Any, ...]:
    """What identifies the model of run ``part`` besides its settings: its weights and their
    SHA-256."""
    return (inputs.value("models").id(run_folders(inputs.spec, inputs.folder)[part][0]),)


def run_folder(inputs: Inputs, part: str) -> Path:
    return run_folders(inputs.spec, inputs.folder)[part][2]


def invert(inputs: Inputs, todo: list[str]) -> None:
    """One backend call for every run to do; each run folder written once its tasks are in."""
    from percalign.study.jobs import ModelRef
    from percalign.study.plan import (
        InversionRun,
        inversion_tasks,
        save_inversion_run,
        target_images,
    )

    spec, models = inputs.spec, inputs.value("models")
    backend = open_backend(inputs)
    device = backend.device(requested_device(spec))
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

    run_tasks(inputs, "invert", tasks, finished)


def judgments(inputs: Inputs, part: str) -> Path:
    from percalign.study.tasks import JUDGMENTS

    return run_folder(inputs, part) / JUDGMENTS


def judge(inputs: Inputs, todo: list[str]) -> None:
    from percalign.judges.metric import held_out_judge
    from percalign.store.runs import read_run, write_table
    from percalign.study.jobs import Task, judge_part

    spec, jd = inputs.spec, inputs.spec.judges
    backend = open_backend(inputs)
    device = backend.device(requested_device(spec))
    by_key: dict[str, str] = {}
    tasks = []
    for part in todo:
        folder = run_folder(inputs, part)
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
        write_table(output.value, judgments(inputs, part))
        inputs.finished(part, output.seconds, backend=backend.name, tasks=1)
        inputs.log(f"Step judge:{part}: done")

    run_tasks(inputs, "judge", tasks, finished)
