"""Study folders: content-addressed stimuli, the database, and writing a survey plan into it."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from percalign.errors import MissingFileError
from percalign.store.db import (
    ItemRow,
    MetaRow,
    StimulusRow,
    connect,
    migrate,
    private_sqlite,
    slot_rows,
)
from percalign.store.runs import read_manifest

__all__ = [
    "DB_FILE",
    "STIMULI",
    "add_stimulus",
    "bot_token",
    "default_url",
    "read_answers",
    "read_looks",
    "read_meta",
    "survey_summary",
    "write_plan",
]

DB_FILE = "percalign.db"
STIMULI = "stimuli"


def default_url(folder: Path) -> str:
    return f"sqlite:///{(Path(folder) / DB_FILE).resolve()}"


def add_stimulus(
    folder: Path, source: Path, kind: str, provenance: dict[str, Any], known: dict[str, StimulusRow]
) -> str:
    """Copy ``source`` to ``folder/stimuli/<sha256>.png`` (once) and return its id."""
    data = source.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha not in known:
        target = folder / STIMULI / f"{sha}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(source, target)
        known[sha] = StimulusRow(
            id=sha, kind=kind, path=f"{STIMULI}/{sha}.png", provenance=provenance
        )
    return sha


def run_records(
    folder: Path, runs: Iterable[Path]
) -> tuple[list[dict[str, Any]], dict[str, StimulusRow]]:
    """Stimuli of inversion runs, copied into the study, and one record per IRI for the plan.

    A record names the IRI's stimuli (``iri``, ``target``, ``seed``), its ``pool`` (the run:
    foils are drawn among its targets), the target's class ``label`` (None when unknown),
    ``target_id`` and ``seed_source_id`` (the pool image an ``image`` seed was taken from).
    """
    stimuli: dict[str, StimulusRow] = {}
    records = []
    for run in runs:
        run = Path(run)
        manifest = read_manifest(run)
        model, config = manifest["model"], manifest["config"]
        base = {
            "run": run.name,
            "model": model["name"],
            "weights": model["weights"],
            "weights_sha256": model["weights_sha256"],
            "loss": config["loss"],
            "optimizer": config["optimizer"],
            "lr": config["lr"],
            "steps": config["steps"],
            "code": manifest.get("code", {}),
        }
        labels = {t["id"]: t.get("label") for t in manifest.get("targets", [])}
        for rec in manifest["iris"]:
            prov = {
                **base,
                "layer": rec["layer"],
                "seed_type": rec["seed_type"],
                "seed_copy": rec["seed_copy"],
                "seed_source_id": rec["seed_source_id"],
                "target_id": rec["target_id"],
                "distance": rec["distance"],
                "valid": rec["valid"],
                "steps_taken": rec["steps"],
            }
            iri = add_stimulus(folder, run / rec["iri"], "iri", prov, stimuli)
            target = add_stimulus(
                folder,
                run / rec["target"],
                "target",
                {"run": run.name, "target_id": rec["target_id"]},
                stimuli,
            )
            seed = add_stimulus(
                folder,
                run / rec["seed"],
                "seed",
                {"run": run.name, "seed_type": rec["seed_type"]},
                stimuli,
            )
            records.append(
                {
                    "iri": iri,
                    "target": target,
                    "seed": seed,
                    "valid": rec["valid"],
                    # foils come from the IRI's own run: its targets share the model's input
                    # format; of another class than the target, never the IRI's seed
                    "pool": run.name,
                    "label": labels.get(rec["target_id"]),
                    "target_id": rec["target_id"],
                    "seed_source_id": rec["seed_source_id"],
                    "condition": {
                        "run": run.name,
                        "model": model["name"],
                        "layer": rec["layer"],
                        "loss": config["loss"],
                        "seed_type": rec["seed_type"],
                    },
                }
            )
    return records, stimuli


def write_plan(url: str, stimuli: dict[str, StimulusRow], plan: Any, meta: dict[str, Any]) -> None:
    """Create the schema at ``url`` and store the stimuli, items, slots and settings (a
    SQLite file is made readable by its owner only)."""
    private_sqlite(url)
    migrate(url)
    engine = connect(url)
    with Session(engine) as session, session.begin():
        session.add_all(stimuli.values())
        session.flush()  # rows referenced by foreign keys go first
        for item in plan.items.values():
            session.add(
                ItemRow(
                    id=item.id,
                    query=item.query,
                    candidates=list(item.candidates),
                    condition=dict(item.condition),
                    is_catch=item.is_catch,
                )
            )
        session.flush()
        for s, slot in enumerate(plan.slots):
            session.add_all(slot_rows(s, slot))
        for key, value in {**meta, "plan": plan.settings, "closed": False}.items():
            session.add(MetaRow(key=key, value=value))
    engine.dispose()


def read_meta(url: str) -> dict[str, Any]:
    engine = connect(url)
    try:
        with Session(engine) as session:
            return {row.key: row.value for row in session.query(MetaRow)}
    finally:
        engine.dispose()


def study_url(folder: Path) -> str:
    """The database URL of a study folder (``survey.json`` records a non-default one)."""
    info = Path(folder) / "survey.json"
    if not info.is_file():
        raise MissingFileError(
            f"{str(folder)!r} is not a study folder (no survey.json); "
            "make one with `percalign survey build`."
        )
    return json.loads(info.read_text()).get("database") or default_url(folder)


def bot_token(folder: Path) -> str:
    """The token that marks simulated participants of the study ``folder`` (only someone who
    can read the study's database has it)."""
    from percalign.store.sessions import SurveyStore

    engine = connect(study_url(folder))
    try:
        return SurveyStore(engine).signer.bot_token()
    finally:
        engine.dispose()


def survey_summary(folder: Path) -> dict[str, Any]:
    """The admin page's progress of the study ``folder`` (participants by status, answers,
    open or closed, a sequential survey's looks), read from its database."""
    from percalign.store.sessions import SurveyStore

    engine = connect(study_url(folder))
    try:
        return SurveyStore(engine).summary()
    finally:
        engine.dispose()


def read_looks(folder: Path) -> list[dict[str, Any]]:
    """Every look of a sequential survey in the study ``folder``: one row per look and
    question, oldest first (empty for a fixed plan)."""
    import dataclasses

    from percalign.store.sessions import SurveyStore

    engine = connect(study_url(folder))
    try:
        history = SurveyStore(engine).history()
    finally:
        engine.dispose()
    rows = [
        {"look": n + 1, **dataclasses.asdict(look)}
        for looks in history.values()
        for n, look in enumerate(looks)
    ]
    return sorted(rows, key=lambda r: (r["look"], r["label"]))


def read_answers(folder: Path, hash_ids: bool = False) -> Any:
    """Every answer of the study ``folder`` as the long export table (a pandas DataFrame).

    The table has the :data:`~percalign.store.export.EXPORT_COLUMNS` even when there is no
    answer yet. Raises :class:`MissingFileError` for a folder that is not a study.
    """
    import pandas as pd

    from percalign.store.export import EXPORT_COLUMNS, export_rows

    engine = connect(study_url(folder))
    try:
        rows = export_rows(engine, hash_ids=hash_ids)
    finally:
        engine.dispose()
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=EXPORT_COLUMNS)
