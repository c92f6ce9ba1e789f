"""The long answer table every score is computed from: one row per answered trial.

Required columns: ``participant``, ``item``, ``correct`` (0/1: the answer named the IRI's own
target). Optional: ``chance`` (probability of a correct answer by guessing; default 1/2),
``choice`` (the option picked, for agreement statistics), and any condition columns to group
by (``model``, ``layer``, ``loss``, ``seed_type``, ``design``...). Survey exports, bot runs and
judge decisions all become such tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from percalign.errors import ConfigError, InputShapeError

__all__ = ["REQUIRED", "check_table", "from_judgments"]

REQUIRED = ("participant", "item", "correct")


def check_table(table: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Validate and normalise an answer table; returns a copy with typed columns."""
    missing = [c for c in (*REQUIRED, *by) if c not in table.columns]
    if missing:
        raise ConfigError(
            f"The answer table lacks column(s) {missing}; it needs {list(REQUIRED)} plus the "
            f"grouping columns. It has: {list(table.columns)}."
        )
    out = table.copy()
    correct = pd.to_numeric(out["correct"], errors="coerce")
    if correct.isna().any() or not correct.isin([0, 1]).all():
        raise InputShapeError("Column 'correct' must hold only 0/1 (or True/False) values.")
    out["correct"] = correct.astype(np.int8)
    if "chance" not in out.columns:
        out["chance"] = 0.5
    out["participant"] = out["participant"].astype(str)
    out["item"] = out["item"].astype(str)
    return out


def from_judgments(judgments: pd.DataFrame, metric: str = "other_2afc") -> pd.DataFrame:
    """An answer table from ``judgments.csv``: each judge acts as one participant."""
    chance = 0.5 if metric.endswith("2afc") else 1.0 / judgments["k"]
    return pd.DataFrame(
        {
            "participant": judgments["judge"],
            "item": judgments["iri"],
            "correct": judgments[metric].astype(int),
            "chance": chance,
            "layer": judgments["layer"],
            "seed_type": judgments["seed_type"],
        }
    )
