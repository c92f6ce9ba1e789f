"""The bots step: simulated participants answer the study's survey, served locally."""

from __future__ import annotations

from percalign.study.graph import Inputs

__all__ = ["simulate"]


def simulate(inputs: Inputs, todo: list[str]) -> None:
    from percalign.execution.serve import local_survey
    from percalign.scoring.stopping import describe_looks
    from percalign.store.study import bot_token, survey_summary
    from percalign.survey.bots import run_bots

    spec, folder = inputs.spec, inputs.folder / "survey"
    bots = spec.bots

    def work(_part: str) -> None:
        simulated = bots.bots(bots.n, seed=spec.study.seed)
        with local_survey(folder) as url:
            done = run_bots(url, simulated, prefix="simulated", bot_token=bot_token(folder))
        state = survey_summary(folder)["sequential"]
        if state is not None:  # a sequential survey: what its looks decided, in the log
            inputs.log(f"Survey: {len(done)} of {bots.n} simulated participants ran")
            for line in describe_looks(state):
                inputs.log("Survey: " + line.strip())

    inputs.run_each(todo, work)
