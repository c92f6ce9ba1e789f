"""Turn inversion runs into a survey: a study folder with stimuli, a plan and a database."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from percalign._checks import check_int
from percalign.errors import ConfigError, unknown_name
from percalign.scoring.attention import AttentionRules
from percalign.scoring.exclusions import Exclusions
from percalign.scoring.stopping import Stopping
from percalign.store.runs import atomic_folder
from percalign.store.study import default_url, run_records, write_plan
from percalign.survey.design import Plan, make_plan
from percalign.survey.requirements import Requirements

__all__ = [
    "DEFAULT_TEXTS",
    "SCREEN_INSTRUCTIONS",
    "build_survey",
    "copy_survey",
    "describe",
    "unset_placeholders",
]


#: The texts a study shows; the consent text has placeholders the researcher must fill in.
DEFAULT_TEXTS = {
    "consent": "This study is run by [RESEARCHER]; questions go to [CONTACT]. You will see "
    "one image at the top and two (or more) images below it, and choose which of the images "
    "below looks more like the one on top. There are no right or wrong answers to look up: go "
    "with your impression. The study takes a few minutes and pays [PAY]. Your answers are "
    "stored without your name. [WITHDRAWAL]",
    "instructions": "Choose the image below that looks more like the image on top: click or "
    "tap it, or on a keyboard press F for the left one and J for the right one (arrow keys "
    "work too).",
    "debrief": "The images on top were made by computer vision models; your answers tell us "
    "whether the models see images the way people do.",
}
#: The default instructions of matching screens (``--design clustering``).
SCREEN_INSTRUCTIONS = (
    "Each screen shows a few numbered images on top and more images below them. Match every "
    "image below with the numbered image on top that it looks most like: tap or click the image "
    "below (it gets a blue frame), then its match on top; on a keyboard, press the match's "
    "number (the arrow keys move the blue frame). You can change any match until you press "
    "Submit. First comes a practice screen where the images below are copies."
)
_PLACEHOLDER = re.compile(r"\[(RESEARCHER|CONTACT|PAY|WITHDRAWAL)\]")


def unset_placeholders(texts: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The placeholders (``[RESEARCHER]``, ``[CONTACT]``, ``[PAY]``, ``[WITHDRAWAL]``) still in
    the texts a study would show with ``texts`` given, by text name.

    >>> unset_placeholders({"consent": "By Ann (ann@example.org); pays 2 GBP; stop any time."})
    {}
    >>> unset_placeholders()["consent"]
    ['[RESEARCHER]', '[CONTACT]', '[PAY]', '[WITHDRAWAL]']
    """
    merged = {**DEFAULT_TEXTS, **(texts or {})}
    found = {name: [m.group(0) for m in _PLACEHOLDER.finditer(t)] for name, t in merged.items()}
    return {name: marks for name, marks in found.items() if marks}


def build_survey(
    folder: Path,
    runs: Sequence[Path],
    *,
    database: str | None = None,
    overwrite: bool = False,
    texts: dict[str, str] | None = None,
    practice: int = 2,
    min_catch_accuracy: float = 0.8,
    max_side_share: float = 0.9,
    min_side_trials: int = 10,
    requirements: dict[str, Any] | None = None,
    stopping: Stopping | None = None,
    exclusions: dict[str, Any] | None = None,
    **design: Any,
) -> Plan:
    """Build the study folder ``folder`` from inversion run folders.

    Args:
        folder: the study folder to create (refused if it exists, unless ``overwrite``).
        runs: ``percalign invert`` output folders.
        database: a SQLAlchemy URL (e.g. PostgreSQL); default ``folder/percalign.db``.
        overwrite: replace an existing study folder (its answers too).
        texts: ``consent``, ``instructions`` and ``debrief`` texts (defaults for the rest;
            the default consent has placeholders, see :func:`unset_placeholders`).
        practice: practice trials with feedback before the real ones (answers not stored).
        min_catch_accuracy: participants below it on catch trials finish as
            ``failed_attention`` (a separate completion code, per Prolific's policy).
        max_side_share, min_side_trials: so do participants with more than
            ``max_side_share`` of at least ``min_side_trials`` answers on one side
            (:mod:`percalign.scoring.attention`).
        requirements: what a participant's device must offer (min_width, min_height,
            pointer, browsers: :class:`~percalign.survey.requirements.Requirements`).
        stopping: the questions the survey must decide, its budget and looks
            (:class:`~percalign.survey.settings.Stopping`): the service then looks at the
            answers as they come and closes the study when they are decided.
        exclusions: the other exclusion rules (:class:`~percalign.scoring.Exclusions`
            fields) a sequential survey's looks apply, as the score step does.
        design: settings of :func:`~percalign.survey.design.make_plan`.
    """
    unknown = set(texts or {}) - set(DEFAULT_TEXTS)
    if unknown:
        raise ConfigError(
            f"Unknown survey text(s) {sorted(unknown)}; use {', '.join(DEFAULT_TEXTS)}."
        )
    check_int("build_survey", "practice", practice, low=0)
    attention = AttentionRules(min_catch_accuracy, max_side_share, min_side_trials)
    needs = Requirements.from_mapping(requirements)
    folder = Path(folder)
    rules = Exclusions(
        **{
            **(exclusions or {}),
            "min_catch_accuracy": min_catch_accuracy,
            "max_side_share": max_side_share,
            "min_side_trials": min_side_trials,
        }
    )
    with atomic_folder(folder, overwrite) as tmp:
        records, stimuli = run_records(tmp, runs)
        plan = make_plan(records, **design)
        declared = _check_questions(stopping, records) if stopping and stopping.asks else None
        _catch_twins(tmp, plan, stimuli)
        # the database lives at its final path; the folder is renamed into place around it
        url = database or default_url(tmp)
        info = {
            "runs": [str(Path(r).resolve()) for r in runs],
            "design": plan.settings,
            "database": database,
            "practice": practice,
            "min_catch_accuracy": min_catch_accuracy,
            "attention": attention.to_json(),
            "stopping": declared,
        }
        # practice items with different images on top
        tops: dict[str, Any] = {}
        for i in plan.items.values():
            if not i.is_catch:
                tops.setdefault(i.candidates[0], i)
        drills: list[dict[str, Any]] = [
            {"query": i.candidates[0], "candidates": list(i.candidates), "correct": 0}
            for i in list(tops.values())[:practice]
        ]
        if plan.settings["design"] == "clustering" and drills:
            # one practice screen: a regular screen's numbered targets, and a copy of each
            first = next(i for i in plan.items.values() if not i.is_catch)
            drills = [{"targets": sorted(first.candidates)}]
        defaults = dict(DEFAULT_TEXTS)
        if plan.settings["design"] == "clustering":
            defaults["instructions"] = SCREEN_INSTRUCTIONS
        write_plan(
            url,
            stimuli,
            plan,
            {
                "survey": info,
                "texts": {**defaults, **(texts or {})},
                "practice": drills,
                "min_catch_accuracy": min_catch_accuracy,
                "attention": attention.to_json(),
                "requirements": needs.to_json(),
                "stopping": declared,
                "exclusions": dataclasses.asdict(rules) if declared else None,
            },
        )
        (tmp / "survey.json").write_text(json.dumps(info, indent=1) + "\n")
        (tmp / "plan.json").write_text(json.dumps(plan.to_json()) + "\n")
    return plan


def _check_questions(stopping: Stopping, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Refuse questions about a column the IRIs do not have, or levels it does not hold;
    return the questions as recorded."""
    values: dict[str, set[str]] = {}
    for r in records:
        for key, value in r.get("condition", {}).items():
            values.setdefault(key, set()).add(str(value))
    for column in stopping.columns:
        if column not in values:
            raise unknown_name("condition column", column, sorted(values), where="in the runs")
    compared = stopping.compare
    if compared is not None:
        for level in stopping.compare_levels or ():
            if level not in values[compared]:
                raise unknown_name(compared, level, values[compared], where="in the runs")
        if len(values[compared]) < 2:
            raise ConfigError(
                f"Comparing the levels of {compared!r} needs two; the runs have "
                f"{sorted(values[compared])}. Build from runs of more than one, or drop compare."
            )
    return stopping.to_json()


#: make_plan's arguments, as a plan's settings record them
_DESIGN_ARGS = (
    "design",
    "foil",
    "k",
    "iris_per_target",
    "trials_per_participant",
    "judgments_per_item",
    "catch_rate",
    "repeat_rate",
    "include_invalid",
    "min_display_ms",
    "seed",
)


def copy_survey(
    source: Path,
    folder: Path,
    *,
    texts: dict[str, str] | None = None,
    database: str | None = None,
    overwrite: bool = False,
) -> Plan:
    """Build ``folder`` as a fresh copy of the survey ``source``: the same runs, design,
    practice and attention rules (so the same trials), its texts unless ``texts`` replace
    some, and none of its answers (a study's survey that simulated participants answered,
    made ready for people)."""
    from percalign.store.study import read_meta, study_url

    url = study_url(Path(source))  # a one-line error for a folder that is not a study
    info = json.loads((Path(source) / "survey.json").read_text())
    if not info.get("runs"):
        raise ConfigError(
            f"{str(source)!r} has no survey.json naming its runs; copy a folder made by "
            "`percalign survey build` or `percalign study run`."
        )
    meta = read_meta(url)
    settings = info["design"]
    design = {k: settings[k] for k in _DESIGN_ARGS if settings.get(k) is not None}
    if design.get("design") != "2afc":
        design.pop("foil", None)  # "targets": what the matching designs show, not an option
    rules = meta.get("attention") or {"min_catch_accuracy": info.get("min_catch_accuracy", 0.8)}
    return build_survey(
        folder,
        [Path(r) for r in info["runs"]],
        database=database,
        overwrite=overwrite,
        texts={**meta.get("texts", {}), **(texts or {})},
        practice=int(info.get("practice", 2)),
        requirements=meta.get("requirements"),
        **rules,
        **design,
    )


def _twin(data: bytes, nonce: bytes) -> bytes:
    """The same pixels as the PNG ``data``, as other bytes: recompressed at another level and
    carrying ``nonce`` in a text chunk."""
    from PIL import Image, PngImagePlugin

    with Image.open(io.BytesIO(data)) as img:
        info = PngImagePlugin.PngInfo()
        info.add_text("n", nonce.hex())
        buf = io.BytesIO()
        img.save(buf, format="PNG", pnginfo=info, compress_level=1)
    return buf.getvalue()


def _catch_twins(folder: Path, plan: Plan, stimuli: dict[str, Any]) -> None:
    """Give every catch item a query of its own: a twin of the candidate it copies, with the
    same pixels and other bytes, so neither a ``data:`` URL, an ETag nor a file hash gives the
    catch trial away (a participant has to look). Replaces the items' queries in ``plan``."""
    from percalign.store.db import StimulusRow
    from percalign.store.study import STIMULI

    for key, item in list(plan.items.items()):
        if not item.is_catch:
            continue
        original = stimuli[item.query]
        nonce = hashlib.sha256(f"catch|{plan.settings['seed']}|{key}".encode()).digest()
        data = _twin((folder / original.path).read_bytes(), nonce[:16])
        sha = hashlib.sha256(data).hexdigest()
        (folder / STIMULI / f"{sha}.png").write_bytes(data)
        stimuli[sha] = StimulusRow(
            id=sha, kind="catch", path=f"{STIMULI}/{sha}.png", provenance={"twin_of": item.query}
        )
        plan.items[key] = dataclasses.replace(item, query=sha)


def describe(settings: dict[str, Any]) -> list[str]:
    """What a plan (its ``settings``) gives, in sentences; when it gives less than was asked,
    what it gives instead and why.

    >>> s = {"items": 12, "excluded_invalid": 0, "slots": 3, "trials_per_participant": 20,
    ...      "trials_per_slot": 15, "regular_per_slot": 12, "catch_per_slot": 2,
    ...      "repeats_per_slot": 1, "judgments_per_item": 3, "min_judgments": 3,
    ...      "max_judgments": 3}
    >>> for line in describe(s): print(line)
    12 items, 3 participant slots of 15 trials, each item judged 3 times.
    Asked for 20 trials per participant, but a slot holds 15: 12 items (nobody sees an item twice), 2 catch and 1 repeated; add IRIs or lower --trials-per-participant.
    """  # noqa: E501
    s = settings
    given, asked = s["trials_per_slot"], s["trials_per_participant"]
    unit = "matching screens" if s.get("design") == "clustering" else "trials"
    low, high = s["min_judgments"], s["max_judgments"]
    judged = f"{low} times" if low == high else f"{low} to {high} times"
    left_out = f" ({s['excluded_invalid']} invalid IRIs left out)" if s["excluded_invalid"] else ""
    lines = [
        f"{s['items']} items{left_out}, {s['slots']} participant slots of {given} {unit}, "
        f"each item judged {judged}."
    ]
    if given < asked and unit != "trials":
        lines.append(
            f"Asked for {asked} {unit} per participant, but a slot holds {given}: the runs "
            f"make {s['regular_per_slot']} (nobody sees a screen twice)"
            + (f" and {s['catch_per_slot']} catch" if s["catch_per_slot"] else "")
            + "; add IRIs or lower --trials-per-participant."
        )
    elif given < asked:
        lines.append(
            f"Asked for {asked} trials per participant, but a slot holds {given}: "
            f"{s['regular_per_slot']} items (nobody sees an item twice), "
            f"{s['catch_per_slot']} catch and {s['repeats_per_slot']} repeated; add IRIs or "
            "lower --trials-per-participant."
        )
    if low > s["judgments_per_item"]:
        lines.append(
            f"Asked for {s['judgments_per_item']} judgments per item; every slot is full, so "
            f"each item gets {judged}."
        )
    return lines
