"""The steps of a study, declared: train -> models -> invert -> judge -> survey -> bots ->
score -> trust -> report (see :mod:`percalign.study.graph` for what a declaration holds).

Each key is derived from the step's declaration: the settings it reads (but the unkeyed
ones), the keys of the steps it reads, and its ``extra`` inputs. A study recorded under the
previous, hand-written keys is re-keyed once (:mod:`percalign.study.legacy_keys`), so it keeps
its work and its answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from percalign import _provenance
from percalign.errors import ConfigError
from percalign.study import model_steps as ms
from percalign.study.graph import Inputs, Step
from percalign.study.ledger import step_key
from percalign.study.model_steps import Models, run_folders
from percalign.study.spec import SECTIONS, StudySpec

__all__ = ["STEPS", "Models", "answer_digest", "run_folders", "survey_runs"]

#: the trust analysis's output format (rules per source, valid IRIs only)
_TRUST_FORMAT = 2


# ----------------------------------------------------------------------------- survey, bots
def survey_runs(inputs: Inputs) -> list[tuple[str, Path]]:
    """The runs people are asked about: those of ``[survey] losses`` (default: every loss)."""
    spec = inputs.spec
    return [
        (part, folder)
        for part, (_, loss, folder) in run_folders(spec, inputs.folder).items()
        if loss in (spec.survey.losses or [loss])
    ]


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
    from percalign.store.study import bot_token
    from percalign.study.serve import local_survey
    from percalign.survey.bots import run_bots

    spec, folder = inputs.spec, inputs.folder / "survey"
    bots = spec.bots

    def work(_part: str) -> None:
        simulated = bots.bots(bots.n, seed=spec.study.seed)
        with local_survey(folder) as url:
            run_bots(url, simulated, prefix="simulated", bot_token=bot_token(folder))

    inputs.run_each(todo, work)


# ------------------------------------------------------------------------ score, trust, report
def _score_extra(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    # the answers so far, and the models' labels in the tables (from the zoo, else the spec)
    return (answer_digest(inputs.folder / "survey"), inputs.value("models").labels)


def _score(inputs: Inputs, todo: list[str]) -> None:
    from percalign.study.scores import score_study

    spec = inputs.spec
    runs = {(m, loss): f for m, loss, f in run_folders(spec, inputs.folder).values()}
    labels = inputs.value("models").labels
    inputs.run_each(todo, lambda _p: score_study(spec, inputs.folder, runs, labels))


def _trust_models(spec: StudySpec) -> list[str]:
    return spec.trust.models or [m.name for m in spec.models]


def _trust_extra(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    models = inputs.value("models")
    return (_TRUST_FORMAT, [models.id(n) for n in _trust_models(inputs.spec)])


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
            judges=get_judges(tr.judges or spec.judges.names, device=ms.model_device(spec)),
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


def _report(inputs: Inputs, todo: list[str]) -> None:
    from percalign.report import build_report

    inputs.run_each(todo, lambda _p: build_report(inputs.folder))


_DEVICE = ("study.device", "inversion.device")
#: what a run (model x loss) is: a name of [[models]] and a loss of [inversion]
_RUN = ("models.name", "inversion.losses")

#: the study's steps; the runner orders them by what each reads
STEPS: tuple[Step, ...] = (
    Step(
        "train",
        settings=("models.name", "models.train", "study.device"),
        unkeyed=("study.device",),
        narrow=ms.model_spec,
        output=ms.zoo_meta,
        run=ms.train,
        parts=lambda i: [m.name for m in i.spec.models if m.train is not None],
    ),
    Step(
        "models",
        reads=("train",),
        settings=("models", *_DEVICE),
        run=ms.load_models,
        recorded=False,
    ),
    Step(
        "invert",
        reads=("models",),
        settings=(*_RUN, "models.weights", "images", "inversion", "study.seed", "tasks", *_DEVICE),
        unkeyed=("tasks", *_DEVICE),
        extra=ms.model_id,
        narrow=ms.run_spec,
        output=lambda i, p: ms.run_folder(i, p) / "manifest.json",
        run=ms.invert,
        parts=ms.runs,
    ),
    Step(
        "judge",
        reads=("invert",),
        settings=(*_RUN, "judges", "study.seed", *_DEVICE),
        unkeyed=_DEVICE,
        narrow=ms.run_spec,
        output=ms.judgments,
        run=ms.judge,
        parts=ms.runs,
    ),
    Step(
        "survey",
        reads=("invert",),
        settings=(
            *_RUN,
            "survey",
            "exclusions.min_catch_accuracy",
            "exclusions.max_side_share",
            "exclusions.min_side_trials",
            "study.seed",
        ),
        upstream=lambda i, _p: [i.key("invert", part) for part, _ in survey_runs(i)],
        output=lambda i, _p: i.folder / "survey" / "plan.json",
        run=_build_survey,
        enabled=lambda i: i.spec.survey.enabled,
    ),
    Step(
        "bots",
        reads=("survey",),
        settings=("bots", "survey.enabled", "study.seed"),
        output=lambda i, _p: i.folder / "survey",
        run=_run_bots,
        enabled=lambda i: i.spec.survey.enabled and i.spec.bots.n > 0,
    ),
    Step(
        "score",
        reads=("models", "judge", "survey", "bots"),
        settings=(
            *_RUN,
            "judges.names",
            "judges.metric",
            "exclusions",
            "scoring",
            "study.seed",
            "survey.design",
            "bots.judge",  # flagged in judges_vs_humans: it decides the simulated participants
        ),
        extra=_score_extra,
        output=lambda i, _p: i.folder / "scores" / "summary.json",
        run=_score,
    ),
    Step(
        "trust",
        reads=("models",),
        settings=(
            "models.name",
            "trust",
            "judges.names",
            "images.source",
            "inversion.layers",
            "inversion.fake_relu",
            "inversion.channels_last",
            "scoring.n_boot",
            "study.seed",
            *_DEVICE,
        ),
        unkeyed=_DEVICE,
        extra=_trust_extra,
        output=lambda i, _p: i.folder / "trust" / "trust.json",
        run=_trust,
        enabled=lambda i: i.spec.trust.enabled,
    ),
    Step(
        "report",
        reads=("train", "invert", "judge", "survey", "bots", "score", "trust"),
        # the report reads study.toml itself: every setting, and the code that writes it
        settings=tuple(SECTIONS),
        unkeyed=("tasks", *_DEVICE),
        extra=lambda _i, _p: (_provenance.code_version(),),
        output=lambda i, _p: i.folder / "report" / "index.html",
        run=_report,
    ),
)
