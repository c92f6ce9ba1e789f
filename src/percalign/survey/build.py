"""Turn inversion runs into a survey: a study folder with stimuli, a plan and a database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from percalign.store.runs import atomic_folder
from percalign.store.study import default_url, run_records, write_plan
from percalign.survey.design import Plan, make_plan

__all__ = ["build_survey"]


def build_survey(
    folder: Path,
    runs: Sequence[Path],
    *,
    database: str | None = None,
    overwrite: bool = False,
    **design: Any,
) -> Plan:
    """Build the study folder ``folder`` from inversion run folders.

    Args:
        folder: the study folder to create (refused if it exists, unless ``overwrite``).
        runs: ``percalign invert`` output folders.
        database: a SQLAlchemy URL (e.g. PostgreSQL); default ``folder/percalign.db``.
        overwrite: replace an existing study folder (its answers too).
        design: settings of :func:`~percalign.survey.design.make_plan`.
    """
    folder = Path(folder)
    with atomic_folder(folder, overwrite) as tmp:
        records, stimuli = run_records(tmp, runs)
        plan = make_plan(records, **design)
        # the database lives at its final path; the folder is renamed into place around it
        url = database or default_url(tmp)
        info = {
            "runs": [str(Path(r).resolve()) for r in runs],
            "design": plan.settings,
            "database": database,
        }
        write_plan(url, stimuli, plan, {"survey": info})
        (tmp / "survey.json").write_text(json.dumps(info, indent=1) + "\n")
        (tmp / "plan.json").write_text(json.dumps(plan.to_json()) + "\n")
    return plan
