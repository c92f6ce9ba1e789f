"""Group-sequential boundaries from error-spending functions (Lan and DeMets).

A study that looks at its answers K times and may stop at any look must spend its error rate
over the looks. An error-spending function f(t) gives the share of the error rate spent by
information fraction t (f(0) = 0, f(1) = the rate), so the looks need not be planned exactly:
each look's boundary follows from the information reached so far.

The boundaries are two-sided and symmetric, for z-statistics Z_1..Z_K with the canonical
joint distribution of a sequence of estimates on accumulating data: Z_k ~ N(theta sqrt(I_k), 1)
and corr(Z_j, Z_k) = sqrt(I_j / I_k) for j < k (independent increments of the score
Z_k sqrt(I_k)). The probabilities come from the recursive numerical integration of Armitage,
McPherson and Rowe: the density of Z on the region where the study continued is carried from
look to look on a Simpson grid, and each look's crossing probability is a normal tail
integrated against it.

- :func:`efficacy_bound` finds the look's |z| boundary such that the chance of crossing some
  boundary by this look, under theta = 0, equals the cumulative alpha to spend.
- :func:`futility_bound` finds the look's |z| below which the study may stop for futility:
  the chance of stopping for futility by this look, under theta = the smallest difference of
  interest, equals the cumulative beta to spend. Futility is non-binding: the efficacy
  boundaries ignore it, so stopping for futility or not never raises the false-positive
  rate.
- :func:`next_bounds` gives one look's pair of boundaries from the looks before it (what a
  study uses as it goes), and :func:`schedule` a whole design's boundaries and its power
  (what planning uses before the study starts): the same rule, so the power planned is the
  power of the decisions made.

**Maximum information.** Looking costs power: boundaries wider than the fixed test's early
on, and futility stops that a fixed design would not make. A group-sequential design with
the declared power therefore needs more information at its last look than the fixed design,
``I_max = inflation x I_fixed`` with ``I_fixed = ((z_{1 - alpha/2} + z_{1 - beta}) /
theta)^2``. The inflation factor is not a constant: it follows from alpha, beta, the spending
functions and where the looks fall, and :func:`schedule` finds it exactly for a given
sequence of looks. :func:`percalign.scoring.sequential.required_budget` turns it into
participants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import optimize, special

__all__ = [
    "SPENDING",
    "Schedule",
    "crossing_probabilities",
    "efficacy_bound",
    "futility_bound",
    "next_bounds",
    "schedule",
]

#: Simpson grid points per continuation interval (odd)
_POINTS = 61
#: |z| beyond which a boundary is treated as never crossed
_NEVER = 12.0


def obrien_fleming(t: float | np.ndarray, rate: float) -> np.ndarray:
    """O'Brien-Fleming-type spending of a one-sided rate: 2 - 2 Phi(z_{1 - rate/2} / sqrt(t)).

    Spends almost nothing early and nearly the whole rate at the end. A two-sided test spends
    ``rate / 2`` on each side (gsDesign's and rpact's convention).

    >>> round(float(obrien_fleming(1.0, 0.05)), 12)
    0.05
    """
    t = np.clip(np.asarray(t, dtype=np.float64), 1e-12, 1.0)
    return 2 * special.ndtr(special.ndtri(rate / 2) / np.sqrt(t))


def pocock(t: float | np.ndarray, rate: float) -> np.ndarray:
    """Pocock-type spending: rate * log(1 + (e - 1) t). Spends evenly over information.

    >>> round(float(pocock(1.0, 0.05)), 12)
    0.05
    """
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    return rate * np.log1p((np.e - 1) * t)


#: error-spending functions by name: f(t, rate) -> the one-sided rate spent by fraction t
SPENDING: dict[str, Callable[[float | np.ndarray, float], np.ndarray]] = {
    "obrien-fleming": obrien_fleming,
    "pocock": pocock,
}


def _unit_simpson() -> tuple[np.ndarray, np.ndarray]:
    w = np.ones(_POINTS)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return np.linspace(0.0, 1.0, _POINTS), w / (3 * (_POINTS - 1))


_UNIT, _UNIT_WEIGHTS = _unit_simpson()


def _simpson(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Points and Simpson weights on [lo, hi]."""
    return lo + (hi - lo) * _UNIT, (hi - lo) * _UNIT_WEIGHTS


def _region(lower: float, upper: float) -> list[tuple[float, float]]:
    """The continuation region lower <= |z| < upper as intervals."""
    upper = min(upper, _NEVER)
    if lower <= 0:
        return [(-upper, upper)]
    if lower >= upper:
        return []
    return [(-upper, -lower), (lower, upper)]


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(x)) / np.sqrt(2 * np.pi)


def _points(region: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    if not region:
        return np.zeros(0), np.zeros(0)
    parts = [_simpson(lo, hi) for lo, hi in region]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _step(z: np.ndarray, before: float, now: float, theta: float) -> tuple[np.ndarray, float]:
    """Mean and SD of Z_k given Z_{k-1} = z (information ``before`` -> ``now``)."""
    gain = max(now - before, 1e-12 * now)
    return (z * np.sqrt(before) + theta * gain) / np.sqrt(now), float(np.sqrt(gain / now))


def _outside(dens: np.ndarray, mean: np.ndarray, sd: float, bound: float) -> float:
    """P(continued, |Z_k| >= bound)."""
    tails = special.ndtr((mean - bound) / sd) + special.ndtr((-bound - mean) / sd)
    return float(dens @ tails)


def _looks(
    regions: Sequence[list[tuple[float, float]]], info: np.ndarray, theta: float
) -> list[tuple[float, Callable[[float], float]]]:
    """For each look k = 1..len(regions) + 1: P(the study continued through the regions of
    the looks before k), and the function bound -> P(continued, |Z_k| >= bound).

    One pass carries the density of Z on the continuation regions from look to look."""
    mu = theta * np.sqrt(info[0])
    out: list[tuple[float, Callable[[float], float]]] = [
        (1.0, lambda b: float(special.ndtr(mu - b) + special.ndtr(-b - mu)))
    ]
    z, w = _points(regions[0]) if regions else (np.zeros(0), np.zeros(0))
    dens = w * _pdf(z - mu)
    for k in range(1, len(regions) + 1):
        mean, sd = _step(z, info[k - 1], info[k], theta)
        out.append((float(dens.sum()), partial(_outside, dens, mean, sd)))
        if k < len(regions):
            new_z, new_w = _points(regions[k])
            dens = new_w * (dens @ (_pdf((new_z[None, :] - mean[:, None]) / sd) / sd))
            z = new_z
    return out


def crossing_probabilities(
    efficacy: Sequence[float] | np.ndarray,
    info: Sequence[float] | np.ndarray,
    theta: float = 0.0,
    futility: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """(K,) P(the study first crosses the efficacy boundary at look k) under ``theta``.

    Args:
        efficacy: (K,) |z| boundaries.
        info: (K,) increasing information (1 / variance of the estimate); under
            ``theta = 0`` only the ratios matter.
        theta: the true difference (on the scale whose variance defines ``info``).
        futility: (K,) |z| below which the study stops for futility (None: no futility).
    """
    growth = np.asarray(info, dtype=np.float64)
    lower = list(futility) if futility is not None else [0.0] * len(efficacy)
    regions = [_region(lo, hi) for lo, hi in zip(lower, efficacy, strict=True)]
    looks = _looks(regions[:-1], growth, theta)
    return np.asarray([cross(bound) for (_, cross), bound in zip(looks, efficacy, strict=True)])


def efficacy_bound(
    previous: Sequence[float], info: Sequence[float] | np.ndarray, cumulative: float
) -> float:
    """The |z| boundary at look k = len(previous) + 1 that spends alpha up to ``cumulative``.

    Args:
        previous: the |z| boundaries of the earlier looks, as they were used.
        info: (k,) information at looks 1..k (only ratios matter).
        cumulative: the alpha spent by this look, f(t_k).

    Returns:
        The boundary; ``inf`` when the earlier looks already spent ``cumulative``.

    >>> round(efficacy_bound([], [1.0], 0.05), 4)
    1.96
    """
    growth = np.asarray(info, dtype=np.float64)
    looks = _looks([_region(0.0, c) for c in previous], growth, 0.0)
    spent = sum(cross(bound) for (_, cross), bound in zip(looks, previous, strict=False))
    increment = cumulative - spent
    if increment <= 1e-12:
        return float("inf")
    cross = looks[-1][1]
    if cross(0.0) <= increment:
        return 0.0
    return float(optimize.brentq(lambda b: cross(b) - increment, 0.0, _NEVER, xtol=1e-7))


def futility_bound(
    previous: Sequence[tuple[float, float]],
    efficacy: float,
    info: Sequence[float] | np.ndarray,
    theta: float,
    cumulative: float,
) -> float:
    """The |z| below which the study stops for futility at look k = len(previous) + 1.

    Args:
        previous: (futility, efficacy) boundaries of the earlier looks.
        efficacy: this look's efficacy boundary.
        info: (k,) information at looks 1..k, on the scale of ``theta`` (1 / variance).
        theta: the smallest difference of interest.
        cumulative: the beta spent by this look, g(t_k).

    Returns:
        A boundary in [0, efficacy]: 0 when no beta is left to spend here, ``efficacy`` when
        every path that continues would be stopped (then each path is decided here).
    """
    growth = np.asarray(info, dtype=np.float64)
    regions = [_region(lo, hi) for lo, hi in previous]
    looks = _looks(regions, growth, theta)
    spent = sum(
        reach - cross(lower) for (reach, cross), (lower, _) in zip(looks, previous, strict=False)
    )
    increment = cumulative - spent
    if increment <= 1e-12:
        return 0.0
    reach, cross = looks[-1]
    upper = min(efficacy, _NEVER)
    if reach - cross(upper) <= increment:
        return float(efficacy)
    if reach - cross(0.0) >= increment:  # only when this look adds almost no information
        return 0.0
    return float(optimize.brentq(lambda b: reach - cross(b) - increment, 0.0, upper, xtol=1e-7))


def next_bounds(
    previous: Sequence[tuple[float, float]],
    info: Sequence[float] | np.ndarray,
    fraction: float,
    alpha: float,
    beta: float,
    theta: float,
    spending: str = "obrien-fleming",
    futility_from: float = 0.0,
) -> tuple[float, float]:
    """This look's (futility, efficacy) |z| boundaries, from the looks before it.

    Args:
        previous: (futility, efficacy) boundaries of the earlier looks, as they were used.
        info: (k,) information at looks 1..k, on the scale of ``theta`` (1 / variance).
        fraction: the information fraction reached at this look (1 at the last).
        alpha: the two-sided false-positive rate of the whole design (``alpha / 2`` a side).
        beta: 1 - the power at ``theta``, spent on futility with the same function.
        theta: the smallest difference of interest.
        spending: a key of :data:`SPENDING`.
        futility_from: the information fraction before which no look stops for futility;
            the first look at or after it spends all the beta due by then.

    >>> [round(b, 3) for b in next_bounds([], [100.0], 1.0, 0.05, 0.2, 0.3)]  # one look
    [1.96, 1.96]
    """
    spend = SPENDING[spending]
    efficacy = efficacy_bound([e for _, e in previous], info, 2 * float(spend(fraction, alpha / 2)))
    if fraction < futility_from:
        return 0.0, efficacy
    futility = futility_bound(previous, efficacy, info, theta, float(spend(fraction, beta)))
    return futility, efficacy


@dataclass(frozen=True)
class Schedule:
    """A design's boundaries and its error rates (:func:`schedule`).

    Attributes:
        info: (K,) information at the looks (1 / variance, on the scale of theta).
        efficacy: (K,) |z| at or above which the study finds a difference.
        futility: (K,) |z| below which it stops for futility (0: no futility stop).
        power: P(some look finds a difference) at theta, with the futility stops.
        stop: (K,) P(the study stops at look k) at theta (the last look takes the rest).
    """

    info: np.ndarray
    efficacy: np.ndarray
    futility: np.ndarray
    power: float
    stop: np.ndarray


def schedule(
    info: Sequence[float] | np.ndarray,
    theta: float,
    alpha: float,
    beta: float,
    spending: str = "obrien-fleming",
    futility_from: float = 0.0,
) -> Schedule:
    """The boundaries of a design whose looks reach ``info``, and its power at ``theta``.

    The fractions are ``info / info[-1]``: the last look spends what is left. With ``info``
    scaled so that ``info[-1] = I_fixed``, ``power`` falls short of 1 - ``beta``: the
    inflation factor is the scale at which it does not.

    >>> fixed = ((1.959964 + 0.841621) / 0.1) ** 2  # alpha 0.05, power 0.8 at 10 points
    >>> round(schedule([fixed], 0.1, 0.05, 0.2).power, 3)
    0.8
    >>> round(schedule(fixed * np.array([0.5, 1.0]), 0.1, 0.05, 0.2).power, 3)
    0.779
    """
    growth = np.asarray(info, dtype=np.float64)
    bounds: list[tuple[float, float]] = []
    for k in range(growth.size):
        fraction = float(growth[k] / growth[-1])
        bounds.append(
            next_bounds(
                bounds, growth[: k + 1], fraction, alpha, beta, theta, spending, futility_from
            )
        )
    futility = np.array([f for f, _ in bounds])
    efficacy = np.array([e for _, e in bounds])
    found = crossing_probabilities(efficacy, growth, theta, futility)
    looks = _looks([_region(lo, hi) for lo, hi in bounds[:-1]], growth, theta)
    reach = np.array([r for r, _ in looks])
    stop = reach - np.append(reach[1:], 0.0)
    return Schedule(growth, efficacy, futility, float(found.sum()), stop)
