"""Planning from a pilot: how many participants and IRIs a CI half-width or a difference needs.

A crossed design has two kinds of sample size. More participants (or more answers from each)
shrink the participant and residual parts of a condition's variance; only more IRIs shrink the
IRI part (see :mod:`percalign.scoring.components`). So a target can be out of reach at the
IRI count a study has: the half-width left with infinitely many participants, the **floor**,
is already above it. The plans below say so, and say how many IRIs per condition are needed.

Half-widths are those of the crossed-bootstrap interval ``percalign score`` prints, and power
is that of its test (the difference's CI excludes 0), both from the closed-form variances of
:func:`~percalign.scoring.components.mean_variance` and
:func:`~percalign.scoring.components.difference_variance` with the pilot's components.
``benchmarks/planning.py`` checks by simulation that the designs planned here reach them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from scipy import stats

from percalign._checks import check_float
from percalign.scoring.components import (
    Components,
    Layout,
    Shared,
    difference_variance,
    mean_variance,
)

__all__ = [
    "DifferencePlan",
    "HalfwidthPlan",
    "difference_power",
    "plan_difference",
    "plan_halfwidth",
    "predicted_halfwidth",
]

#: the most participants a plan considers (beyond it a target counts as out of reach)
MAX_PARTICIPANTS = 1_000_000
#: IRIs per condition of the designs offered when a target needs more IRIs, as multiples of
#: the fewest that can reach it
_EXAMPLES = (1.25, 1.5, 2.0)


@dataclass(frozen=True)
class HalfwidthPlan:
    """What a CI half-width needs.

    Attributes:
        halfwidth: the target half-width (share correct).
        layout: the design asked about; ``participants`` is the number needed at its IRIs and
            answers per participant, or the pilot's when out of reach.
        reachable: whether the target can be reached at ``layout.iris`` IRIs.
        floor: the half-width left with infinitely many participants at ``layout.iris`` IRIs.
        iris_needed: the fewest IRIs per condition whose floor is below the target (with
            very many participants at that count).
        examples: designs with more IRIs that reach the target (when it is out of reach),
            each with the participants needed at the pilot's answers per participant.
    """

    halfwidth: float
    layout: Layout
    reachable: bool
    floor: float
    iris_needed: int
    examples: tuple[Layout, ...]


@dataclass(frozen=True)
class DifferencePlan:
    """What detecting a difference needs: like :class:`HalfwidthPlan`, with ``power`` the
    target power, ``floor`` the power reached with infinitely many participants at
    ``layout.iris`` IRIs, and ``iris_needed`` the fewest IRIs per condition whose floor
    reaches ``power``."""

    difference: float
    power: float
    layout: Layout
    reachable: bool
    floor: float
    iris_needed: int
    examples: tuple[Layout, ...]


def predicted_halfwidth(components: Components, layout: Layout, level: float = 0.95) -> float:
    """The half-width of the crossed-bootstrap CI ``percalign score`` would print for a
    condition with ``components`` in ``layout`` (normal approximation)."""
    return _z(level) * math.sqrt(mean_variance(components, layout, printed=True))


def difference_power(
    a: Components,
    b: Components,
    shared: Shared,
    difference: float,
    layout: Layout,
    alpha: float = 0.05,
) -> float:
    """Power of the crossed-bootstrap comparison (its 1 - ``alpha`` CI excludes 0) when the
    two conditions differ by ``difference`` in share correct: the estimate varies with the
    true variance, the interval is as wide as the bootstrap's."""
    sd = math.sqrt(difference_variance(a, b, shared, layout))
    width = _z(1 - alpha) * math.sqrt(difference_variance(a, b, shared, layout, printed=True))
    d = abs(difference)
    return float(stats.norm.cdf((d - width) / sd) + stats.norm.cdf((-d - width) / sd))


def plan_halfwidth(
    components: Components,
    halfwidth: float,
    layout: Layout | None = None,
    level: float = 0.95,
) -> HalfwidthPlan:
    """The participants that a ``level`` CI of +- ``halfwidth`` needs at ``layout``'s IRIs and
    answers per participant (default: the pilot's), or, when no number of participants is
    enough, the IRIs per condition that are.

    Example:
        >>> c = Components(None, 0.7, participant=0.01, target=0.0, iri=0.04, residual=0.16,
        ...                layout=Layout(participants=30, iris=40, per_participant=40))
        >>> plan = plan_halfwidth(c, 0.05)
        >>> plan.reachable, plan.iris_needed
        (False, 62)
    """
    check_float("plan_halfwidth", "halfwidth", halfwidth, 0.0, 0.5, low_open=True)
    check_float("plan_halfwidth", "level", level, 0.0, 1.0, low_open=True)
    base = layout or components.layout

    def width(lay: Layout) -> float:
        return predicted_halfwidth(components, lay, level)

    return HalfwidthPlan(halfwidth, *_plan(lambda lay: width(lay) <= halfwidth, base, width))


def plan_difference(
    a: Components,
    b: Components,
    shared: Shared,
    difference: float,
    power: float = 0.8,
    alpha: float = 0.05,
    layout: Layout | None = None,
) -> DifferencePlan:
    """The participants (answering both conditions) needed to detect ``difference`` in share
    correct with ``power`` at level ``alpha``, at ``layout``'s IRIs per condition and answers
    per participant (default: the first condition's pilot), or the IRIs that are needed."""
    check_float("plan_difference", "difference", difference, 0.0, 1.0, low_open=True)
    check_float("plan_difference", "power", power, 0.0, 1.0, low_open=True)
    check_float("plan_difference", "alpha", alpha, 0.0, 1.0, low_open=True)
    base = layout or a.layout

    def reached(lay: Layout) -> float:
        return difference_power(a, b, shared, difference, lay, alpha)

    return DifferencePlan(
        difference, power, *_plan(lambda lay: reached(lay) >= power, base, reached)
    )


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def _plan(
    enough: Callable[[Layout], bool], base: Layout, measure: Callable[[Layout], float]
) -> tuple[Layout, bool, float, int, tuple[Layout, ...]]:
    """The layout with the fewest participants that is ``enough`` at ``base``'s IRIs and
    answers per participant; whether there is one; ``measure`` with unlimited participants;
    the fewest IRIs that can be enough; designs with more IRIs that are."""
    k = base.iris_per_target
    floor = measure(_with(base, base.iris, MAX_PARTICIPANTS))
    fewest = _fewest_iris(enough, base)
    needed = _fewest_participants(enough, base, base.iris)
    if needed is not None:
        return needed, True, floor, fewest, ()
    examples = []
    for factor in _EXAMPLES:
        iris = int(math.ceil(factor * fewest / k) * k)
        found = _fewest_participants(enough, base, iris)
        if found is not None:
            examples.append(found)
    return base, False, floor, fewest, tuple(examples)


def _with(base: Layout, iris: int, participants: int) -> Layout:
    """``base`` at ``iris`` IRIs and ``participants`` participants, each answering as many
    of the condition's IRIs as in ``base`` (all of them when there are fewer)."""
    return replace(
        base,
        participants=participants,
        iris=iris,
        per_participant=min(base.per_participant, float(iris)),
        iris_per_target=min(base.iris_per_target, float(iris)),
    )


def _fewest_participants(
    enough: Callable[[Layout], bool], base: Layout, iris: int
) -> Layout | None:
    """Bisection over participants (every IRI answered at least once); the variances fall
    as participants grow."""
    low = max(2, math.ceil(iris / min(base.per_participant, iris)))
    if not enough(_with(base, iris, MAX_PARTICIPANTS)):
        return None
    if enough(_with(base, iris, low)):
        return _with(base, iris, low)
    high = MAX_PARTICIPANTS
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(_with(base, iris, mid)) else (mid, high)
    return _with(base, iris, high)


def _fewest_iris(enough: Callable[[Layout], bool], base: Layout) -> int:
    """The fewest IRIs (a whole number of targets) that are enough with unlimited
    participants; the floor falls as IRIs grow."""
    k = base.iris_per_target

    def ok(targets: int) -> bool:
        return enough(_with(base, max(1, round(targets * k)), MAX_PARTICIPANTS))

    low, high = 1, 2
    while not ok(high):
        low, high = high, high * 2
        if high > MAX_PARTICIPANTS:
            return MAX_PARTICIPANTS
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if ok(mid) else (mid, high)
    return max(1, round(high * k)) if not ok(low) else max(1, round(low * k))
