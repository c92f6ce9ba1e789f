"""The survey step: build the survey of the runs people are asked about (its plan and its
database); a survey that already holds answers is never rebuilt.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from percalign.errors import ConfigError
from percalign.study.graph import Inputs
from percalign.study.ledger import step_key
from percalign.study.steps.common import run_folders

__all__ = ["answer_digest", "build", "survey_runs"]


def survey_runs(inputs: Inputs) -> list[tuple[str, Path]]:
    """The runs people are asked about: those of ``[survey] losses`` (default: every loss)."""
    spec = inputs.spec
    return [
        (part, folder)
        for part, (_, loss, folder) in run_folders(spec, inputs.folder).items()
        if loss in (spec.survey.losses or [loss])
    ]


def build(inputs: Inputs, todo: list[str]) -> None:
    from percalign.scoring.exclusions import Exclusions
    from percalign.scoring.stopping import STOPPING_FIELDS, Stopping
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
            [f for _, f in survey_runs(inputs)],
            database=sv.database,
            overwrite=True,
            practice=sv.practice,
            min_catch_accuracy=spec.exclusions.min_catch_accuracy,
            max_side_share=spec.exclusions.max_side_share,
            min_side_trials=spec.exclusions.min_side_trials,
            requirements=sv.requirements,
            design=sv.design,
            foil=sv.foil,
            k=sv.k,
            iris_per_target=sv.iris_per_target,
            trials_per_participant=sv.trials_per_participant,
            judgments_per_item=sv.judgments_per_item,
            catch_rate=sv.catch_rate,
            repeat_rate=sv.repeat_rate,
            include_invalid=sv.include_invalid,
            seed=spec.study.seed,
            stopping=Stopping(**{name: getattr(spec.scoring, name) for name in STOPPING_FIELDS}),
            exclusions={f.name: getattr(spec.exclusions, f.name) for f in fields(Exclusions)},
        )

    inputs.run_each(todo, work)


def answer_digest(survey: Path) -> tuple[int, str]:
    """(answers, a hash of who chose what where): changes whenever an answer arrives."""
    if not (survey / "plan.json").is_file():
        return (0, "")
    from percalign.store.study import read_answers

    rows = read_answers(survey)[["participant", "trial", "choice"]].values.tolist()
    return (len(rows), step_key([tuple(r) for r in rows]))
