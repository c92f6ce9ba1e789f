"""Judges against external human 2AFC data: how often a judge picks what people picked.

Public two-alternative sets (BAPPS, NIGHTS and the like) show people a reference and two
distorted or generated candidates and record how many chose each. A judge is valid on such a
set to the extent that it picks the candidate people picked. The CSV format read here:

========== ===============================================================
column     meaning
========== ===============================================================
reference  path of the reference image (relative to the image root)
a          path of candidate A
b          path of candidate B
votes_a    people who judged A the more similar to the reference (>= 0)
votes_b    people who judged B the more similar (>= 0; votes_a + votes_b > 0)
========== ===============================================================

Paths are relative to an image root (by default the CSV's folder). Each row's sides are
swapped at random first (seeded): some public sets list the people's winner first, and a judge
that cannot tell the candidates apart (equal distances) picks the first one, which would
otherwise count as agreement.

Two agreements are reported for each judge, each with a percentile bootstrap CI that resamples
references, then rows within references (rows that share a reference are not independent):

* ``majority``: the judge picks the candidate most people picked (a tied vote counts 1/2);
* ``votes``: the share of people who picked what the judge picked (the 2AFC score of the
  perceptual-similarity literature).

Beside them, what people reach against each other, on the same rows:

* ``majority`` ceiling: split-half agreement, each row's votes split at random into two halves
  whose majorities are compared (ties 1/2); the mean over splits with the 2.5 and 97.5
  percentiles of the splits, a range and not a CI. Halves are half as reliable as the whole,
  so this ceiling is conservative: a judge can exceed it;
* ``votes`` ceiling: the chance that two different people of a row agree, averaged over rows
  (rows with one vote have none and are left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from percalign._checks import check_int
from percalign.data.images import read_image, resize, to_channels
from percalign.errors import ConfigError, InputShapeError, MissingFileError
from percalign.judges.base import Judge
from percalign.scoring.crossed import target_ci

__all__ = ["COLUMNS", "Triplets", "agreements", "human_ceiling", "read_triplets", "validate_judges"]

COLUMNS = ("reference", "a", "b", "votes_a", "votes_b")


@dataclass(frozen=True)
class Triplets:
    """Rows of a human 2AFC set after side randomization, and where their images are."""

    table: pd.DataFrame  # COLUMNS, plus ``swapped`` (bool: the CSV's a and b were exchanged)
    root: Path
    size: tuple[int, int] | None  # resize every image to this (H, W); None keeps sizes

    def images(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reference, a, b) batches of ``rows``, at one size and one channel count."""
        loaded = [
            [self._read(str(self.table.at[r, col])) for r in rows]
            for col in ("reference", "a", "b")
        ]
        channels = 3 if any(t.shape[0] == 3 for group in loaded for t in group) else 1
        shapes = {tuple(t.shape[-2:]) for group in loaded for t in group}
        if len(shapes) > 1:
            raise InputShapeError(
                f"The images of rows {rows[0]}..{rows[-1]} differ in size ({sorted(shapes)[:3]}); "
                "pass --size H (or size=(H, W)) to resize them all to one size."
            )
        return tuple(  # type: ignore[return-value]
            torch.cat([to_channels(t.unsqueeze(0), channels) for t in group]) for group in loaded
        )

    def _read(self, name: str) -> torch.Tensor:
        image = read_image(self.root / name)
        return resize(image.unsqueeze(0), self.size)[0] if self.size else image


def read_triplets(
    path: str | Path,
    root: str | Path | None = None,
    size: int | None = None,
    seed: int = 0,
) -> Triplets:
    """Read and check a human 2AFC CSV (see the module docstring), and randomize its sides."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"No human 2AFC file at {path}; give a CSV with columns {COLUMNS}.")
    try:
        table = pd.read_csv(path, dtype={"reference": str, "a": str, "b": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(
            f"Cannot read {path} as CSV ({exc}); give a CSV with columns {COLUMNS}."
        ) from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(
            f"{path} lacks the column(s) {missing}; a human 2AFC file has the columns {COLUMNS}."
        )
    if table.empty:
        raise ConfigError(f"{path} has no rows; it needs one row per reference and pair.")
    table = table[list(COLUMNS)].reset_index(drop=True)
    for col in ("reference", "a", "b"):
        empty = table[col].isna() | (table[col].astype(str).str.strip() == "")
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise ConfigError(f"Row {row} of {path} has no {col} path; every row names 3 images.")
    for col in ("votes_a", "votes_b"):
        votes = pd.to_numeric(table[col], errors="coerce")
        bad = votes.isna() | (votes < 0) | (votes != np.floor(votes))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"Row {row} of {path} has {col} = {table.at[row, col]!r}; votes are whole "
                "numbers >= 0."
            )
        table[col] = votes.astype(np.int64)
    none = (table["votes_a"] + table["votes_b"]) == 0
    if none.any():
        raise ConfigError(
            f"Row {int(np.flatnonzero(none)[0])} of {path} has no votes; drop rows nobody judged."
        )
    if size is not None:
        check_int("read_triplets", "size", size, low=8)
    root = Path(root) if root is not None else path.parent
    for col in ("reference", "a", "b"):
        for row, name in enumerate(table[col]):
            if not (root / name).is_file():
                raise MissingFileError(
                    f"Row {row} of {path} names image {name!r}, which is not under {root}; give "
                    "the folder that holds the images (--image-root) or fix the path."
                )
    swap = np.random.default_rng(seed).random(len(table)) < 0.5
    table["swapped"] = swap
    for x, y in (("a", "b"), ("votes_a", "votes_b")):
        table.loc[swap, [x, y]] = table.loc[swap, [y, x]].to_numpy()
    return Triplets(
        table=table,
        root=root,
        size=(size, size) if size is not None else None,
    )


def agreements(
    picks_b: np.ndarray, votes_a: np.ndarray, votes_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: agreement with the majority (1 when the pick is the majority's choice, 1/2 on
    a tied vote, else 0) and the share of people who picked what was picked."""
    majority_b = np.sign(votes_b - votes_a)  # +1: b, -1: a, 0: tie
    agree = np.where(picks_b == 1, majority_b > 0, majority_b < 0).astype(np.float64)
    majority = np.where(majority_b == 0, 0.5, agree)
    share = np.where(picks_b == 1, votes_b, votes_a) / (votes_a + votes_b)
    return majority, share


def human_ceiling(
    votes_a: np.ndarray, votes_b: np.ndarray, n_splits: int = 200, seed: int = 0
) -> dict[str, float]:
    """What people reach against each other (see the module docstring): the split-half
    majority agreement (mean, 2.5 and 97.5 percentiles over splits) and the chance that two
    different people of a row agree.

    >>> human_ceiling(np.array([4, 0]), np.array([0, 6]))["votes"]
    1.0
    """
    va, vb = np.asarray(votes_a, dtype=np.int64), np.asarray(votes_b, dtype=np.int64)
    n = va + vb
    pairs = n >= 2
    out = {"votes": float("nan"), "majority": float("nan"), "low": float("nan")}
    out["high"] = float("nan")
    if not pairs.any():
        return out
    same = va * (va - 1) + vb * (vb - 1)
    out["votes"] = float(np.mean(same[pairs] / (n[pairs] * (n[pairs] - 1))))
    rng = np.random.default_rng(seed)
    half = n[pairs] // 2
    a_first = rng.hypergeometric(va[pairs], vb[pairs], half, size=(n_splits, int(pairs.sum())))
    b_first = half - a_first
    a_second, b_second = va[pairs] - a_first, vb[pairs] - b_first
    first = np.sign(b_first - a_first)
    second = np.sign(b_second - a_second)
    agree = np.where((first == 0) | (second == 0), 0.5, (first == second).astype(np.float64))
    per_split = agree.mean(axis=1)
    out["majority"] = float(per_split.mean())
    out["low"], out["high"] = (float(q) for q in np.quantile(per_split, [0.025, 0.975]))
    return out


def validate_judges(
    judges: Sequence[Judge],
    triplets: Triplets,
    n_boot: int = 2000,
    seed: int = 0,
    batch: int = 64,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each judge's agreement with people on ``triplets``.

    Returns:
        (summary, picks): ``summary`` has one row per judge (``rows``, ``majority`` with
        ``majority_lo``/``majority_hi``, ``votes`` with ``votes_lo``/``votes_hi``, and the
        human ceilings ``ceiling_majority`` with ``ceiling_low``/``ceiling_high`` and
        ``ceiling_votes``), all in [0, 1]; ``picks`` has one row per CSV row and judge, with
        the judge's pick in the CSV's own sides (``a`` or ``b``).
    """
    check_int("validate_judges", "batch", batch, low=1)
    table = triplets.table
    va, vb = table["votes_a"].to_numpy(), table["votes_b"].to_numpy()
    ceiling = human_ceiling(va, vb, seed=seed)
    refs = table["reference"].astype(str).to_numpy()
    picks: dict[str, np.ndarray] = {j.name: np.zeros(len(table), dtype=np.int64) for j in judges}
    for start in range(0, len(table), batch):
        rows = list(range(start, min(start + batch, len(table))))
        reference, a, b = triplets.images(rows)
        for j in judges:
            picks[j.name][rows] = j.two_afc(reference, a, b).cpu().numpy()
    summary, long = [], []
    for j in judges:
        pick_b = picks[j.name]
        majority, votes = agreements(pick_b, va, vb)
        m_lo, m_hi = target_ci(majority, refs, n_boot=n_boot, seed=seed)
        v_lo, v_hi = target_ci(votes, refs, n_boot=n_boot, seed=seed)
        summary.append(
            {
                "judge": j.name,
                "rows": len(table),
                "majority": float(majority.mean()),
                "majority_lo": m_lo,
                "majority_hi": m_hi,
                "votes": float(votes.mean()),
                "votes_lo": v_lo,
                "votes_hi": v_hi,
                "ceiling_majority": ceiling["majority"],
                "ceiling_low": ceiling["low"],
                "ceiling_high": ceiling["high"],
                "ceiling_votes": ceiling["votes"],
            }
        )
        csv_b = pick_b.astype(bool) ^ table["swapped"].to_numpy()  # back to the CSV's sides
        long.append(
            pd.DataFrame(
                {
                    "row": np.arange(len(table)),
                    "judge": j.name,
                    "pick": np.where(csv_b, "b", "a"),
                    "agrees_with_majority": majority,
                    "share_of_votes": votes,
                }
            )
        )
    return pd.DataFrame(summary), pd.concat(long, ignore_index=True)
