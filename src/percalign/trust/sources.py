"""Who says an IRI looks like its target: judges, people or simulated participants.

Every score the trust analysis uses carries its **source**:

* ``judge:NAME``: an automated judge (``judge:ssim``);
* ``humans``: answers from people, i.e. from the platforms :data:`PEOPLE_PLATFORMS`
  (Prolific, MTurk, a plain link);
* ``bots``: answers from simulated participants (platform ``bot``).

A study with both kinds of answers gives both sources, reported apart. Answers from any
other platform are refused rather than guessed at.

The scores table has one row per input x model x source (:data:`SCORE_COLUMNS`):
``alignment`` (share of the model's IRIs of the input judged like their target) with its
95% Wilson interval ``lo``..``hi`` over those IRIs or answers, ``margin`` (judges only: mean of
(d_foil - d_target) / (d_foil + d_target), a continuous tie-breaker) with its standard error
``margin_se``, and ``n`` (IRIs or answers behind the score).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from percalign.errors import ConfigError
from percalign.scoring.stats import wilson

__all__ = [
    "BOT_PLATFORMS",
    "PEOPLE_PLATFORMS",
    "SCORE_COLUMNS",
    "answer_source",
    "human_scores",
    "judge_scores",
    "source_label",
    "valid_judgments",
]

PEOPLE_PLATFORMS = ("prolific", "mturk", "link")
BOT_PLATFORMS = ("bot",)
SCORE_COLUMNS = ("input_id", "model", "source", "alignment", "lo", "hi", "margin", "margin_se", "n")


def require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise :class:`ConfigError` naming the columns ``table`` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(
            f"The {what} table lacks column(s) {missing}; it needs {list(columns)}. "
            f"It has: {list(table.columns)}."
        )


def answer_source(platform: str) -> str:
    """``humans`` for a people's platform, ``bots`` for simulated participants.

    >>> answer_source("prolific"), answer_source("bot")
    ('humans', 'bots')
    """
    if platform in PEOPLE_PLATFORMS:
        return "humans"
    if platform in BOT_PLATFORMS:
        return "bots"
    raise ConfigError(
        f"Answers from platform {platform!r} are neither from people "
        f"({', '.join(PEOPLE_PLATFORMS)}) nor from simulated participants "
        f"({', '.join(BOT_PLATFORMS)}); the trust analysis will not guess which."
    )


def source_label(source: str) -> str:
    """How a source is named in tables and text.

    >>> source_label("bots"), source_label("judge:ssim"), source_label("humans")
    ('simulated participants (bots)', 'judge ssim', 'people')
    """
    if source == "humans":
        return "people"
    if source == "bots":
        return "simulated participants (bots)"
    if source.startswith("judge:"):
        return f"judge {source.removeprefix('judge:')}"
    raise ConfigError(f"Unknown score source {source!r}; use humans, bots or judge:NAME.")


def _wilson_columns(frame: pd.DataFrame) -> pd.DataFrame:
    pairs = zip(frame["alignment"], frame["n"], strict=True)
    bounds = [wilson(round(a * n), int(n)) for a, n in pairs]
    frame["lo"] = [b[0] for b in bounds]
    frame["hi"] = [b[1] for b in bounds]
    return frame


def valid_judgments(judgments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The judgments of valid IRIs, and per model and seed type how many IRIs were dropped.

    An IRI without a validity flag (no validity null) is kept. ``judgments`` has one row per
    IRI x judge with ``model``, ``seed_type``, ``judge`` and ``valid``.
    """
    require(judgments, ("model", "seed_type", "judge", "valid"), "judge")
    flags = judgments["valid"].map(lambda v: v is None or v != v or bool(v)).to_numpy(bool)
    marked = judgments.assign(kept=flags)
    first = marked.drop_duplicates(["model", "iri"]) if "iri" in marked else marked
    counts = (
        first.groupby(["model", "seed_type"], sort=False)["kept"]
        .agg(iris="size", valid="sum")
        .reset_index()
    )
    counts["valid"] = counts["valid"].astype(int)
    counts["dropped"] = counts["iris"] - counts["valid"]
    return judgments[flags], counts


def judge_scores(judgments: pd.DataFrame, metric: str = "other_2afc") -> pd.DataFrame:
    """Per input x model x judge alignment from judge decisions on IRIs.

    Args:
        judgments: rows of :func:`percalign.judges.judge_run` with ``input_id`` and ``model``
            columns added (the IRI's target and the model inverted); filter invalid IRIs out
            first (:func:`valid_judgments`).
        metric: ``other_2afc`` (IRI vs its target and another target) or ``seed_2afc``
            (IRI vs its target and its seed, the paper's proxy).
    """
    foils = {"other_2afc": "d_other", "seed_2afc": "d_seed"}
    if metric not in foils:
        raise ConfigError(f"Unknown trust metric {metric!r}; use one of {sorted(foils)}.")
    require(judgments, ("input_id", "model", "judge", metric, "d_target", foils[metric]), "judge")
    d_t = judgments["d_target"].astype(float)
    d_f = judgments[foils[metric]].astype(float)
    total = (d_t + d_f).replace(0.0, np.nan)
    frame = pd.DataFrame(
        {
            "input_id": judgments["input_id"].astype(str),
            "model": judgments["model"].astype(str),
            "source": "judge:" + judgments["judge"].astype(str),
            "aligned": judgments[metric].astype(float),
            "margin": ((d_f - d_t) / total).fillna(0.0),
        }
    )
    out = frame.groupby(["input_id", "model", "source"], sort=False).agg(
        alignment=("aligned", "mean"),
        margin=("margin", "mean"),
        margin_sd=("margin", "std"),
        n=("aligned", "size"),
    )
    out = out.reset_index()
    out["margin_se"] = out["margin_sd"] / np.sqrt(out["n"])
    return _wilson_columns(out)[list(SCORE_COLUMNS)]


def human_scores(answers: pd.DataFrame, iris: pd.DataFrame) -> pd.DataFrame:
    """Per input x model x source alignment from survey answers on a trust analysis's IRIs.

    The source of each answer comes from its ``platform`` (:func:`answer_source`): answers of
    simulated participants become ``bots``, never ``humans``.

    Args:
        answers: the answer table (after exclusions), with ``query`` (the IRI's stimulus id,
            its SHA-256), ``correct`` and ``platform``.
        iris: ``iri_sha256``, ``input_id`` and ``model`` of every IRI in the analysis.
    """
    require(answers, ("query", "correct", "platform"), "answer")
    require(iris, ("iri_sha256", "input_id", "model"), "IRI")
    sources = answers["platform"].astype(str).map(answer_source)
    merged = (
        answers[["query", "correct"]]
        .assign(source=sources)
        .merge(iris.rename(columns={"iri_sha256": "query"}), on="query", how="inner")
    )
    out = merged.groupby(["input_id", "model", "source"], sort=False).agg(
        alignment=("correct", "mean"), n=("correct", "size")
    )
    out = out.reset_index()
    out["margin"] = np.nan
    out["margin_se"] = np.nan
    out["input_id"] = out["input_id"].astype(str)
    return _wilson_columns(out)[list(SCORE_COLUMNS)]
