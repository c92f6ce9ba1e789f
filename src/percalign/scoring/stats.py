"""Percentile bootstrap of a mean, and the Wilson interval (for independent 0/1 outcomes)."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["bootstrap_ci", "wilson"]


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: ``successes`` of ``n`` at ``level``.

    It treats the answers as independent; for answers that cluster by participant and item
    use :class:`~percalign.scoring.crossed.CrossedDesign`. ``n = 0`` gives NaNs.

    >>> tuple(round(x, 4) for x in wilson(3, 10))
    (0.1078, 0.6032)
    """
    if n == 0:
        return (float("nan"), float("nan"))
    z = stats.norm.ppf(0.5 + level / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(centre - half), float(centre + half))


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (resampling the values)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))
    means = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
