"""The train step: train the models of ``[[models]]`` that have a ``train`` table and that
the zoo lacks, as tasks on the backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from percalign.errors import ConfigError
from percalign.study.graph import Inputs
from percalign.study.steps.common import open_backend, run_tasks

if TYPE_CHECKING:
    from percalign.execution.tasks import Output, Task

__all__ = ["train", "zoo_meta"]


def zoo_meta(_inputs: Inputs, name: str) -> Path:
    from percalign.training import zoo_dir

    return zoo_dir() / name / "meta.json"


def train(inputs: Inputs, todo: list[str]) -> None:
    """Train the models the zoo lacks, as tasks on the backend; a zoo model trained
    otherwise is refused."""
    from percalign.execution.tasks import Task, train_part
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
