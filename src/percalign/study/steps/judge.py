"""The judge step: the automatic judges' answers on each run's IRIs, as tasks on the
backend; a run's adversary judge is held out of its own run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from percalign.store.runs import read_manifest
from percalign.study.graph import Inputs
from percalign.study.steps.common import open_backend, requested_device, run_folder, run_tasks

if TYPE_CHECKING:
    from percalign.execution.tasks import Output

__all__ = ["judge", "judgments"]


def judgments(inputs: Inputs, part: str) -> Path:
    from percalign.execution.run_folders import JUDGMENTS

    return run_folder(inputs, part) / JUDGMENTS


def judge(inputs: Inputs, todo: list[str]) -> None:
    from percalign.execution.tasks import Task, judge_part
    from percalign.judges import JudgeSettings
    from percalign.judges.metric import held_out_judge
    from percalign.store.runs import read_run, write_table

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
        settings = JudgeSettings(names=names, k=jd.k, metric=jd.metric)
        kwargs = {"settings": settings, "seed": spec.study.seed, "device": device}
        tasks.append(Task(key, f"judge {part}", judge_part, (read_run(folder),), kwargs))

    def finished(task: Task, output: Output) -> None:
        part = by_key[task.key]
        write_table(output.value, judgments(inputs, part))
        inputs.finished(part, output.seconds, backend=backend.name, tasks=1)
        inputs.log(f"Step judge:{part}: done")

    run_tasks(inputs, "judge", tasks, finished)
