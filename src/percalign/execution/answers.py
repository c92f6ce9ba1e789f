"""A survey's answers as every scorer reads them, with the exclusion rules declared for them.

``percalign score``, the study's score step and the trust analysis read a survey's answers
through :func:`study_answers` (participants keyed and ordered alike, so the same answers always
give the same bootstrap) and apply :func:`declared_exclusions`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from percalign import _toml
from percalign._settings import check_table
from percalign.errors import ConfigError
from percalign.scoring.exclusions import Exclusions

__all__ = [
    "KIND_LABELS",
    "declared_exclusions",
    "participant_kind",
    "study_answers",
    "study_root",
]

#: how each participant kind is named in tables
KIND_LABELS = {
    "simulated": "simulated participants (bots)",
    "people": "people",
    "mixed": "people and simulated participants mixed",
}


def participant_kind(answers: pd.DataFrame) -> str:
    """``simulated`` (all bots), ``people`` (no bots) or ``mixed``."""
    bots = answers["platform"].astype(str).eq("bot")
    return "simulated" if bots.all() else ("people" if not bots.any() else "mixed")


def study_answers(answers: pd.DataFrame) -> pd.DataFrame:
    """A survey's answers keyed and ordered for scoring: each participant is
    ``platform:platform_pid`` (not the random id of their session), rows by participant and
    trial, so that the same answers always give the same bootstrap (resampling follows order),
    and with a ``target`` column (the first of an item's candidates, the IRI's own target).

    Tables without the platform columns (an answer table from elsewhere) are returned as they
    are.
    """
    if not {"platform", "platform_pid", "trial"} <= set(answers.columns):
        return answers
    keyed = answers.assign(
        participant=answers["platform"].astype(str) + ":" + answers["platform_pid"].astype(str)
    )
    if "candidates" in keyed.columns and "target" not in keyed.columns:
        # the first candidate is the IRI's own target (display order is separate): the
        # crossed bootstrap resamples targets, shared by the models that inverted them
        keyed["target"] = keyed["candidates"].astype(str).str.split("|").str[0]
    return keyed.sort_values(["participant", "trial"], kind="stable")


def study_root(folder: Path) -> Path | None:
    """The study folder (the one with ``study.toml``) whose survey ``folder`` is, given the
    study's folder or its ``survey`` folder; None for a survey built on its own."""
    folder = Path(folder)
    for root in (folder, folder.parent):
        if (root / "study.toml").is_file() and (root / "survey").resolve() in (
            folder.resolve(),
            (folder / "survey").resolve(),
        ):
            return root
    return None


def declared_exclusions(survey: Path) -> Exclusions:
    """The exclusion rules declared for a survey's answers: its study's ``[exclusions]``, else
    the attention rules the survey was built with (catch accuracy, side rule) over the
    defaults, else the defaults.

    A study folder's ``study.toml`` is the effective spec the study ran with, so its
    ``[exclusions]`` table is read as the spec reads it: checked against the fields of
    :class:`~percalign.scoring.Exclusions`.
    """
    from percalign.store.study import read_meta, study_url

    root = study_root(survey)
    if root is not None:
        path = root / "study.toml"
        try:
            table = _toml.loads(path.read_text()).get("exclusions", {})
        except _toml.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
        return Exclusions(**check_table(Exclusions, table, f"{path}: [exclusions]"))
    meta = read_meta(study_url(survey))
    declared = {"min_catch_accuracy": meta.get("min_catch_accuracy"), **meta.get("attention", {})}
    return Exclusions(**{k: v for k, v in declared.items() if v is not None})
