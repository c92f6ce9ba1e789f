"""Matching scores on the long answer table: accuracy per IRI and confusion matrices.

A matching answer (a k-way trial, or one IRI assigned on a matching screen) names the
target it chose through its row: ``candidates`` (``|``-joined stimulus ids, the IRI's own
target first), ``display_order`` (``|``-joined candidate indices in display order) and
``choice`` (the display position chosen).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["confusion_matrices", "matching_accuracy"]


def _targets(answers: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(the IRI's target, the target chosen) of every row."""
    cands = answers["candidates"].astype(str).str.split("|")
    order = answers["display_order"].astype(str).str.split("|")
    chosen = [
        c[int(o[int(choice)])] for c, o, choice in zip(cands, order, answers["choice"], strict=True)
    ]
    return cands.str[0], pd.Series(chosen, index=answers.index)


def matching_accuracy(answers: pd.DataFrame, by: Sequence[str] = ("query",)) -> pd.DataFrame:
    """Share of correct matches per IRI (or per ``by``), with its chance level (1/k).

    Args:
        answers: the long answer table (``correct``, ``chance`` and the ``by`` columns).
        by: the columns to group by (default: the IRI, ``query``).

    Returns:
        One row per group: the ``by`` columns, ``n``, ``accuracy``, ``chance``.

    >>> t = pd.DataFrame({"query": ["x", "x", "y"], "correct": [1, 0, 1], "chance": 1 / 3})
    >>> matching_accuracy(t)[["query", "n", "accuracy"]].values.tolist()
    [['x', 2, 0.5], ['y', 1, 1.0]]
    """
    grouped = answers.groupby(list(by), sort=True)
    out = grouped.agg(
        n=("correct", "size"), accuracy=("correct", "mean"), chance=("chance", "mean")
    )
    return out.reset_index()


def confusion_matrices(answers: pd.DataFrame, by: str = "model") -> dict[str, pd.DataFrame]:
    """Per value of ``by`` (default: the model), how often an IRI of each target was
    matched to each target: rows are the IRIs' targets, columns the targets chosen (counts;
    the diagonal is correct). Pairs of targets never on one screen stay 0.

    >>> t = pd.DataFrame({"model": ["m", "m"], "candidates": ["a|b", "b|a"],
    ...                   "display_order": ["0|1", "0|1"], "choice": [0, 0]})
    >>> confusion_matrices(t)["m"].values.tolist()
    [[1, 0], [0, 1]]
    """
    truth, chosen = _targets(answers)
    out = {}
    for key, rows in answers.groupby(by, sort=True).groups.items():
        labels = sorted(set(truth[rows]) | set(chosen[rows]))
        table = pd.crosstab(truth[rows], chosen[rows]).reindex(
            index=labels, columns=labels, fill_value=0
        )
        table.index.name, table.columns.name = "target", "chosen"
        out[str(key)] = table.astype(int)
    return out
