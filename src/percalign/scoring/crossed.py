"""Crossed resampling of an answer table: participants, targets, and IRIs within targets.

Answers cluster twice: by the participant who gave them and by the item (an IRI shown with its
candidates) they answer. An interval that resamples only one of the two is too narrow, and a
comparison that treats each model's IRIs as fixed calls equal models different far too often.
:class:`CrossedDesign` holds the answers as a participant x item grid; :meth:`replicates`
redraws both at once, for every condition with the same draws:

- participants with replacement, shared by every condition (a participant who judged two
  models keeps their pairing);
- targets with replacement, shared by every condition that has IRIs of them (a paired design,
  where every model inverted the same targets, keeps its power: the targets' difficulty
  cancels in the difference), stratified by which conditions a target appears in, so that
  each condition keeps its number of targets;
- then, for each drawn copy of a target, that condition's items of the target with
  replacement.

Without a ``target`` column every item is its own target. The bootstrap is conservative
(answer-level noise enters through each resampled factor; see ``benchmarks/README.md`` for
the coverage and false-positive rates measured by ``benchmarks/stats_calibration.py``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from percalign.errors import ConfigError

__all__ = ["CrossedDesign", "percentile_p", "target_ci"]

#: replicates computed per chunk (bounds the memory of the (chunk, items) products)
_CHUNK = 256


@dataclass(frozen=True)
class CrossedDesign:
    """Answers summed into a participant x item grid, with each item's condition and target.

    Attributes:
        hits: (P, I) correct answers per participant and item.
        counts: (P, I) answers per participant and item.
        condition: (I,) int in [0, C): the condition (e.g. model) of each item.
        target: (I,) int in [0, T): the target of each item (the item itself when the table
            names no target).
        levels: the C condition values, in code order.
    """

    hits: np.ndarray
    counts: np.ndarray
    condition: np.ndarray
    target: np.ndarray
    levels: tuple[Hashable, ...]

    @classmethod
    def of(cls, table: pd.DataFrame, column: str | None = None) -> CrossedDesign:
        """The design of a checked answer table (see :func:`~percalign.scoring.check_table`).

        Args:
            table: answers with ``participant``, ``item``, ``correct``, optionally ``target``.
            column: the condition column (e.g. ``model``); None for one condition.

        Raises:
            ConfigError: an item appears under two levels of ``column``.
        """
        p = table["participant"].astype("category").cat.codes.to_numpy()
        items = table["item"].astype("category")
        i = items.cat.codes.to_numpy()
        shape = (int(p.max()) + 1, int(i.max()) + 1)
        hits = np.zeros(shape)
        counts = np.zeros(shape)
        np.add.at(hits, (p, i), table["correct"].to_numpy(dtype=np.float64))
        np.add.at(counts, (p, i), 1.0)
        first = table.assign(_i=i).drop_duplicates("_i").sort_values("_i")
        if column is not None:
            levels_per_item = table.groupby(i)[column].nunique()
            if (levels_per_item > 1).any():
                item = items.cat.categories[int(np.argmax(levels_per_item.to_numpy()))]
                raise ConfigError(
                    f"Comparing levels of {column!r} needs each item under one level; item "
                    f"{item!r} appears under {levels_per_item.max()}. Compare a column that "
                    "describes the IRIs (model, layer, loss, seed_type), not the participants."
                )
        if column is None:
            condition = np.zeros(shape[1], dtype=np.int64)
            levels: tuple[Hashable, ...] = (None,)
        else:
            codes = first[column].astype("category")
            condition = codes.cat.codes.to_numpy().astype(np.int64)
            levels = tuple(codes.cat.categories)
        unit = first["target"] if "target" in first.columns else first["item"]
        target = unit.astype(str).astype("category").cat.codes.to_numpy().astype(np.int64)
        return cls(hits, counts, condition, target, levels)

    def estimates(self) -> np.ndarray:
        """(C,) proportion correct of each condition over all its answers."""
        return self._ratio(
            np.ones((1, self.hits.shape[0])), np.ones((1, self.hits.shape[1]))
        ).ravel()

    def replicates(self, n_boot: int, seed: int) -> np.ndarray:
        """(n_boot, C) proportions correct of each condition under crossed resampling.

        The replicates are spread about the estimate by sqrt(n/(n - 1)), n the fewest units
        resampled (participants, or the targets of a stratum), which removes the bootstrap's
        small-sample shrinkage, and clipped to [0, 1]. A replicate where a condition lost all
        its answers (no drawn participant answered its drawn items) is NaN for that condition.
        """
        rng = np.random.default_rng(seed)
        n_p = self.hits.shape[0]
        wp = rng.multinomial(n_p, np.full(n_p, 1.0 / n_p), size=n_boot).astype(np.float64)
        wi, fewest = self._item_weights(rng, n_boot)
        reps = np.concatenate(
            [self._ratio(wp[s : s + _CHUNK], wi[s : s + _CHUNK]) for s in range(0, n_boot, _CHUNK)]
        )
        # a bootstrap over n units has variance (n - 1)/n of the unbiased one; with 8 IRIs per
        # model that made 95% intervals cover 93%. Spread the replicates about the estimate
        # by sqrt(n/(n - 1)) for the fewest units resampled (participants or a stratum's
        # targets).
        n = min(n_p if n_p > 1 else np.inf, fewest)
        if np.isfinite(n):
            estimate = self.estimates()
            reps = np.clip(estimate + np.sqrt(n / (n - 1)) * (reps - estimate), 0.0, 1.0)
        return reps

    def _item_weights(self, rng: np.random.Generator, n_boot: int) -> tuple[np.ndarray, float]:
        """(n_boot, I) how often each item is drawn: targets within strata, then items; and
        the size of the smallest stratum of more than one target (inf when there is none)."""
        n_t = int(self.target.max()) + 1
        n_c = len(self.levels)
        seen = np.zeros((n_t, n_c), dtype=bool)
        seen[self.target, self.condition] = True
        _, stratum = np.unique(seen, axis=0, return_inverse=True)
        wt = np.zeros((n_boot, n_t))
        fewest = np.inf
        for s in np.unique(stratum):
            members = np.flatnonzero(stratum == s)
            k = len(members)
            wt[:, members] = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot)
            fewest = min(fewest, k) if k > 1 else fewest
        wi = wt[:, self.target].copy()  # items alone in their (target, condition) cell
        cell = self.target * n_c + self.condition
        cells, sizes = np.unique(cell, return_counts=True)
        for c in cells[sizes > 1]:
            members = np.flatnonzero(cell == c)
            k = len(members)
            drawn = wt[:, self.target[members[0]]].astype(np.int64) * k
            wi[:, members] = rng.multinomial(drawn, np.full(k, 1.0 / k))
        return wi, fewest

    def _ratio(self, wp: np.ndarray, wi: np.ndarray) -> np.ndarray:
        """(B, C) weighted proportions correct for participant weights (B, P) and item
        weights (B, I)."""
        onehot = np.zeros((self.hits.shape[1], len(self.levels)))
        onehot[np.arange(self.hits.shape[1]), self.condition] = 1.0
        num = ((wp @ self.hits) * wi) @ onehot
        den = ((wp @ self.counts) * wi) @ onehot
        return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def percentile_p(replicates: np.ndarray, null: float) -> float:
    """Two-sided p-value of ``null`` from bootstrap replicates of an estimate.

    The smallest level at which the equal-tailed percentile interval excludes ``null``: twice
    the smaller share of replicates on either side of it, each counted with the ``+1``
    correction, capped at 1. It agrees with the interval: p < 0.05 exactly when ``null`` lies
    outside the 95% percentile interval (up to that correction). NaN replicates are ignored.

    >>> percentile_p(np.array([0.1, 0.2, 0.3, 0.4]), 0.0)
    0.4
    """
    r = np.asarray(replicates, dtype=np.float64)
    r = r[~np.isnan(r)]
    if r.size == 0:
        return float("nan")
    below = (1 + np.sum(r <= null)) / (r.size + 1)
    above = (1 + np.sum(r >= null)) / (r.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def target_ci(
    correct: np.ndarray,
    targets: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile CI of one judge's share correct over IRIs that share targets: targets are
    resampled, then IRIs within each drawn target (IRIs of one target are not independent).

    When every outcome is the same (a share of 0 or 1), every resample repeats it and the
    percentile interval has no width; the interval is then the exact (Clopper-Pearson) one
    for 0 or all successes in as many independent trials as there are distinct targets:
    conservative, as the IRIs of one target count once.

    Args:
        correct: (N,) 0/1 (or bool) outcome per IRI.
        targets: (N,) the target of each IRI.

    >>> lo, hi = target_ci(np.ones(96), np.repeat(np.arange(48), 2), n_boot=50)
    >>> round(lo, 4), hi
    (0.926, 1.0)
    """
    values = np.asarray(correct, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    if np.all(values == values[0]) and values[0] in (0.0, 1.0):
        # Clopper-Pearson with x = 0 (or x = n): the bound solves (1 - p)^n = alpha / 2
        n = len(np.unique(np.asarray(targets).astype(str)))
        bound = float((1 - level) / 2) ** (1 / n)
        return (0.0, 1 - bound) if values[0] == 0 else (bound, 1.0)
    table = pd.DataFrame(
        {
            "participant": "judge",
            "item": np.arange(values.size).astype(str),
            "target": np.asarray(targets).astype(str),
            "correct": values,
        }
    )
    reps = CrossedDesign.of(table).replicates(n_boot, seed)[:, 0]
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(reps, [alpha, 1 - alpha])
    return float(lo), float(hi)
