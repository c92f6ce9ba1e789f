"""The steps of a study, declared: train -> models -> invert -> judge -> survey -> bots ->
score -> trust -> report (see :mod:`percalign.study.graph` for what a declaration holds).
Each step's work is in its own module here (``train.py``, ``models.py``, ...); what several
steps share is in ``common.py``.

Each key is derived from the step's declaration: the settings it reads (but the unkeyed
ones), the keys of the steps it reads, and its ``extra`` inputs. A study recorded under the
previous, hand-written keys is re-keyed once (:mod:`percalign.study.legacy_keys`), so it keeps
its work and its answers.
"""

from __future__ import annotations

from percalign import _provenance
from percalign.scoring.stopping import STOPPING_FIELDS
from percalign.study.graph import Step
from percalign.study.spec import SECTIONS
from percalign.study.steps import (
    bots,
    common,
    invert,
    judge,
    models,
    report,
    score,
    survey,
    train,
    trust,
)

__all__ = ["STEPS"]


_DEVICE = ("study.device", "inversion.device")
#: what a run (model x loss) is: a name of [[models]] and a loss of [inversion]
_RUN = ("models.name", "inversion.losses")

#: the declared questions and stopping rule of a sequential survey: written into its database
_STOPPING = tuple(f"scoring.{name}" for name in STOPPING_FIELDS)

#: the study's steps; the runner orders them by what each reads
STEPS: tuple[Step, ...] = (
    Step(
        "train",
        settings=("models.name", "models.train", "study.device"),
        unkeyed=("study.device",),
        narrow=common.model_spec,
        output=train.zoo_meta,
        run=train.train,
        parts=lambda i: [m.name for m in i.spec.models if m.train is not None],
    ),
    Step(
        "models",
        reads=("train",),
        settings=("models", *_DEVICE),
        run=models.load_models,
        recorded=False,
    ),
    Step(
        "invert",
        reads=("models",),
        settings=(*_RUN, "models.weights", "images", "inversion", "study.seed", "tasks", *_DEVICE),
        unkeyed=("tasks", *_DEVICE),
        extra=common.model_id,
        narrow=common.run_spec,
        output=lambda i, p: common.run_folder(i, p) / "manifest.json",
        run=invert.invert,
        parts=common.runs,
    ),
    Step(
        "judge",
        reads=("invert",),
        settings=(*_RUN, "judges", "study.seed", *_DEVICE),
        unkeyed=_DEVICE,
        narrow=common.run_spec,
        output=judge.judgments,
        run=judge.judge,
        parts=common.runs,
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
            *_STOPPING,
            # the rules a sequential survey's looks apply to the answers they decide on
            "exclusions.min_answers",
            "exclusions.min_rt_ms",
            "exclusions.max_fast_share",
            "exclusions.require_complete",
        ),
        added=(
            *_STOPPING,
            "exclusions.min_answers",
            "exclusions.min_rt_ms",
            "exclusions.max_fast_share",
            "exclusions.require_complete",
        ),
        upstream=lambda i, _p: [i.key("invert", part) for part, _ in survey.survey_runs(i)],
        output=lambda i, _p: i.folder / "survey" / "plan.json",
        run=survey.build,
        enabled=lambda i: i.spec.survey.enabled,
    ),
    Step(
        "bots",
        reads=("survey",),
        settings=("bots", "survey.enabled", "study.seed"),
        output=lambda i, _p: i.folder / "survey",
        run=bots.simulate,
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
        extra=score.score_extra,
        output=lambda i, _p: i.folder / "scores" / "summary.json",
        run=score.score,
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
        extra=trust.trust_extra,
        output=lambda i, _p: i.folder / "trust" / "trust.json",
        run=trust.trust,
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
        run=report.report,
    ),
)
