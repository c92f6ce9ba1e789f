"""Variance components of a crossed participant x IRI design, and the variance of its means.

A condition's 0/1 answers vary because participants differ (``participant``), because targets
differ in how recognisable their IRIs are (``target``), because IRIs of one target differ
(``iri``), and because the same participant answers the same kind of IRI differently from
trial to trial (``residual``, which also holds every interaction). On the probability scale:

- ``participant``: the variance over participants of their expected share correct;
- ``target`` + ``iri``: the variance over IRIs of their expected share correct (``target`` is
  the part shared by the IRIs of one target; it is 0 and all of it is ``iri`` when no target
  has two IRIs of the condition);
- ``residual``: the rest of the answers' variance.

They are estimated by moments of pairs of answers (U-statistics, after Owen's pigeonhole
analysis of crossed random effects). For two answers drawn independently the expected half
squared difference is the answers' variance; for two answers of one participant to IRIs of
different targets it is that variance less ``participant``; for two participants' answers to
one IRI, less ``target + iri``; for answers to two IRIs of one target, less ``target``. Each
class of pairs gives its mean half squared difference (for 0/1 answers, half the share of
discordant pairs), and the differences between classes give the components: unbiased for any
design, complete or not, without a model of the answers' distribution. An estimate can fall
below 0 by chance; the variances below treat it as 0.

:func:`mean_variance` and :func:`difference_variance` give, in closed form, the variance of a
condition's share correct and of the difference of two conditions' shares for a
:class:`Layout` (participants, IRIs per condition, answers per participant), either the true
sampling variance or the variance of the crossed bootstrap that ``percalign score`` prints
its intervals from (:class:`~percalign.scoring.crossed.CrossedDesign`), which is larger: the
bootstrap counts the residual noise through each resampled factor.

:mod:`percalign.scoring.moments` estimates the variance of a contrast too, and on the same
design both estimate the same true variance. ``tests/scoring/test_budget.py`` checks that they
agree: on one condition's alignment to within 2% on average; on a paired difference the route
through the components' covariances comes out 4-9% higher in simulation (the moments nearer
the variance of the estimates), which errs towards more participants. They are kept apart on
purpose, because they answer different questions:

- here, components of *one answer's* variance, from which the variance of *any* layout
  follows: more IRIs, more targets, a different number of answers per participant, or the
  crossed bootstrap that ``percalign score`` prints. That is what planning a study from a
  pilot needs (:mod:`percalign.scoring.power`). The price is a model of the design (a
  :class:`Layout` of whole numbers per condition) and a loop per condition and per pair;
- there, the variance of the estimate actually observed, design-based (two-way cluster
  moments of its own residuals), for any weights over any number of conditions, exact for
  incomplete and unbalanced allocations, with Satterthwaite degrees of freedom, batched over
  thousands of simulated studies. It can only project along participants, which is all a
  sequential look needs.

Building one on the other would cost the planner its layouts or the looks their exactness and
speed.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from percalign._checks import check_float, check_int
from percalign.errors import ConfigError
from percalign.scoring.crossed import CrossedDesign

__all__ = [
    "Components",
    "Layout",
    "Shared",
    "difference_variance",
    "mean_variance",
    "shared_components",
    "variance_components",
]


@dataclass(frozen=True)
class Components:
    """Variance components of one condition's answers (probability scale; see the module).

    Attributes:
        level: the condition (a level of the design's condition column; None for one).
        mean: share correct.
        participant: variance of the participants' expected shares correct.
        target: variance shared by the IRIs of one target (0 when no target has two IRIs).
        iri: variance of the IRIs within targets (all IRI variance when each has its own).
        residual: the rest (answer-to-answer noise and interactions).
        layout: the pilot's own layout (participants, IRIs, answers per participant).
    """

    level: Hashable
    mean: float
    participant: float
    target: float
    iri: float
    residual: float
    layout: Layout

    @property
    def total(self) -> float:
        """The variance of one answer, the sum of the components."""
        return self.participant + self.target + self.iri + self.residual


@dataclass(frozen=True)
class Shared:
    """What two conditions share: the covariance of a participant's expected shares correct in
    the two, the covariance of a target's (when the conditions have IRIs of the same targets),
    and the share of targets they have in common (1: a paired design; 0: none shared)."""

    participant: float
    target: float
    targets_shared: float


@dataclass(frozen=True)
class Layout:
    """A planned (or observed) design of one condition.

    Attributes:
        participants: participants, each answering ``per_participant`` of the condition's IRIs.
        iris: IRIs of the condition.
        per_participant: answers per participant to the condition (at most ``iris``; each IRI
            at most once per participant).
        iris_per_target: IRIs per target (1: each IRI has its own target).
    """

    participants: int
    iris: int
    per_participant: float
    iris_per_target: float = 1.0

    def __post_init__(self) -> None:
        check_int("Layout", "participants", self.participants, low=1)
        check_int("Layout", "iris", self.iris, low=1)
        check_float("Layout", "per_participant", self.per_participant, 1.0, float(self.iris))
        check_float("Layout", "iris_per_target", self.iris_per_target, 1.0, float(self.iris))

    @property
    def answers(self) -> float:
        """Answers to the condition."""
        return self.participants * self.per_participant

    @property
    def per_iri(self) -> float:
        """Answers per IRI (R)."""
        return self.answers / self.iris

    @property
    def targets(self) -> float:
        """Targets of the condition's IRIs."""
        return self.iris / self.iris_per_target

    @classmethod
    def of(cls, design: CrossedDesign, condition: int = 0) -> Layout:
        """The layout of one condition (a code of ``design.levels``) of an observed design,
        with the mean answers per participant among those who answered it."""
        _, counts, target = _condition(design, condition)
        answered = counts.sum(axis=1)
        iris = counts.shape[1]
        return cls(
            participants=len(answered),
            iris=iris,
            per_participant=float(min(max(answered.mean(), 1.0), iris)),
            iris_per_target=iris / len(np.unique(target)),
        )


def variance_components(design: CrossedDesign) -> tuple[Components, ...]:
    """The variance components of each condition of ``design`` (in the order of its levels).

    Raises:
        ConfigError: a condition has fewer than 2 participants or 2 targets, no participant
            answered IRIs of two targets, or no IRI was answered by two participants: the
            components cannot be told apart.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"participant": list("aabbcc"), "item": list("xyxyxy"),
        ...                   "correct": [1, 0, 1, 0, 1, 1]})
        >>> c = variance_components(CrossedDesign.of(t))[0]
        >>> round(c.mean, 3), round(c.total, 3)  # 4 of the 6 pairs with nothing shared differ
        (0.667, 0.333)
    """
    return tuple(_components(design, c) for c in range(len(design.levels)))


def shared_components(design: CrossedDesign, a: int, b: int) -> Shared:
    """The covariances of two conditions (codes ``a`` and ``b`` of ``design.levels``) through
    the participants who answered both and the targets both have IRIs of: from pairs of one
    answer in each, as the difference between the mean half squared difference of pairs with
    neither in common and of pairs sharing only the participant (or only the target).

    Raises:
        ConfigError: no participant answered both conditions.
    """
    onehot = _onehot(design.target, int(design.target.max()) + 1)
    sums = []
    for c in (a, b):
        idx = design.condition == c
        sums.append((design.hits[:, idx] @ onehot[idx], design.counts[:, idx] @ onehot[idx]))
    (ha, na), (hb, nb) = sums

    def cross(h1: np.ndarray, n1: np.ndarray, h2: np.ndarray, n2: np.ndarray) -> np.ndarray:
        return np.array([np.sum(h1 * (n2 - h2) + h2 * (n1 - h1)), np.sum(n1 * n2)])

    both = cross(ha, na, hb, nb)  # same participant, same target
    person = cross(ha.sum(1), na.sum(1), hb.sum(1), nb.sum(1))
    target = cross(ha.sum(0), na.sum(0), hb.sum(0), nb.sum(0))
    everything = cross(ha.sum(), na.sum(), hb.sum(), nb.sum())
    neither = _half(everything - person - target + both)
    only_person = _half(person - both)
    if not np.isfinite(only_person) or not np.isfinite(neither):
        levels = design.levels
        raise ConfigError(
            f"Conditions {levels[a]!r} and {levels[b]!r} share no participant who answered "
            "IRIs of different targets in both; planning their difference needs participants "
            "who answer both."
        )
    only_target = _half(target - both)
    ta, tb = na.sum(0) > 0, nb.sum(0) > 0
    return Shared(
        participant=neither - only_person,
        target=neither - only_target if np.isfinite(only_target) else 0.0,
        targets_shared=float(np.sum(ta & tb) / max(ta.sum(), tb.sum())),
    )


def mean_variance(components: Components, layout: Layout, printed: bool = False) -> float:
    """Variance of a condition's share correct in ``layout``: the true sampling variance, or
    (``printed``) the variance of the crossed bootstrap that ``percalign score`` prints its
    interval from. Participants and IRIs are taken as drawn at random from their populations,
    and each participant's IRIs at random from the condition's.

    For P participants, I IRIs of T targets, n answers, the true variance is close to
    participant/P + target/T + iri/I + residual/n.
    """
    a, t, w, e = (max(v, 0.0) for v in _parts(components))
    m, k, r = layout.per_participant, layout.iris_per_target, layout.per_iri
    other = (m - 1) / (layout.iris - 1) if layout.iris > 1 else 0.0
    # per answer: the answers paired with it (itself included), by what they share (at most
    # one answer per participant and IRI): (count, covariance, same participant, target
    # relation, as in _sum)
    classes = [
        (1.0, a + t + w + e, True, 2),
        ((m - 1) - other * (k - 1), a, True, 0),
        (other * (k - 1), a + t, True, 1),
        (r - 1, t + w, False, 2),
        ((k - 1) * r - other * (k - 1), t, False, 1),
    ]
    classes.append((layout.answers - sum(c[0] for c in classes), 0.0, False, 0))
    return _sum(classes, layout, printed) / layout.answers


def difference_variance(
    a: Components, b: Components, shared: Shared, layout: Layout, printed: bool = False
) -> float:
    """Variance of the difference between two conditions' shares correct when both have
    ``layout`` and the same participants answer both: each condition's variance (see
    :func:`mean_variance`) less twice their covariance, which the shared participants and
    (for a share of the targets) the shared targets bring. ``printed``: the variance of the
    crossed bootstrap difference ``percalign score --compare`` prints.

    For a paired design the true covariance is close to
    shared.participant / P + shared.target / T.
    """
    # estimated covariances can exceed what the variances allow (a correlation over 1); clip
    ca = _clip(shared.participant, a.participant, b.participant)
    ct = _clip(shared.target, _targets(a), _targets(b))
    m, k, r = layout.per_participant, layout.iris_per_target, layout.per_iri
    s = shared.targets_shared
    # per answer of the first condition: the answers of the second paired with it (target
    # relation 3: an IRI of its target in the other condition)
    both = s * m * k / layout.iris
    classes = [
        (both, ca + ct, True, 3),
        (m - both, ca, True, 0),
        (s * k * r - both, ct, False, 3),
    ]
    classes.append((layout.answers - sum(c[0] for c in classes), 0.0, False, 0))
    covariance = _sum(classes, layout, printed) / layout.answers
    return mean_variance(a, layout, printed) + mean_variance(b, layout, printed) - 2 * covariance


def _sum(classes: list[tuple[float, float, bool, int]], layout: Layout, printed: bool) -> float:
    """Sum over classes of pairs of answers of count x covariance: the true variance (times
    the answers); ``printed``: weighted by the covariance of the bootstrap weights of the pair,
    answers centred at their mean, spread by the bootstrap's n/(n - 1)."""
    if not printed:
        return sum(count * cov for count, cov, _, _ in classes)
    p, t, k = layout.participants, layout.targets, layout.iris_per_target
    # E[w w'] of a pair's weights: participants drawn with replacement (2 - 1/P for one, 1 - 1/P
    # for two), targets likewise, then, in each condition, a target's IRIs among its k for
    # each draw of it (relation 2: one IRI; 1: two IRIs of a target in one condition; 3: in
    # two conditions; 0: two targets)
    person = {True: 2 - 1 / p, False: 1 - 1 / p}
    iri = {2: 3 - 1 / t - 1 / k, 1: 2 - 1 / t - 1 / k, 3: 2 - 1 / t, 0: 1 - 1 / t}
    weights = [person[same] * iri[rel] - 1 for _, _, same, rel in classes]
    total = sum(c[0] * g * c[1] for c, g in zip(classes, weights, strict=True))
    # the bootstrap resamples about the sample's mean, not the population's: each answer's
    # deviation loses the estimate's own (co)variance, sum(count x covariance) / answers
    centre = sum(c[0] * c[1] for c in classes) / layout.answers
    total -= centre * sum(c[0] * g for c, g in zip(classes, weights, strict=True))
    return total * _shrinkage(p, t)


def _shrinkage(participants: float, targets: float) -> float:
    """The bootstrap's n/(n - 1) spread (see ``CrossedDesign.replicates``), n the fewer of
    participants and targets."""
    n = min(participants if participants > 1 else np.inf, targets if targets > 1 else np.inf)
    return float(n / (n - 1)) if np.isfinite(n) else 1.0


def _clip(covariance: float, var_a: float, var_b: float) -> float:
    bound = float(np.sqrt(max(var_a, 0.0) * max(var_b, 0.0)))
    return float(np.clip(covariance, -bound, bound))


def _targets(c: Components) -> float:
    """The variance of a target's effect: ``target``, or all IRI variance when the pilot had
    one IRI per target (then the two cannot be told apart)."""
    return c.target if c.layout.iris_per_target > 1 else c.target + c.iri


def _parts(c: Components) -> tuple[float, float, float, float]:
    return c.participant, c.target, c.iri, c.residual


def _onehot(codes: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(codes), size))
    out[np.arange(len(codes)), codes] = 1.0
    return out


def _half(discordant_and_pairs: np.ndarray) -> float:
    """Mean half squared difference of 0/1 pairs: half the share of discordant pairs."""
    discordant, pairs = discordant_and_pairs
    return float(discordant / (2 * pairs)) if pairs > 0 else float("nan")


def _condition(design: CrossedDesign, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """hits, counts (participants who answered x the condition's IRIs) and target codes."""
    idx = design.condition == c
    hits, counts = design.hits[:, idx], design.counts[:, idx]
    rows = counts.sum(axis=1) > 0
    _, target = np.unique(design.target[idx], return_inverse=True)
    return hits[rows], counts[rows], target


def _within(h: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Discordant pairs and pairs of answers within each group, summed over groups."""
    return np.array([np.sum(h * (n - h)), np.sum(n * (n - 1) / 2)])


def _components(design: CrossedDesign, c: int) -> Components:
    hits, counts, target = _condition(design, c)
    onehot = _onehot(target, int(target.max()) + 1)
    hpt, npt = hits @ onehot, counts @ onehot
    cell = _within(hits, counts)
    pt = _within(hpt, npt)
    person = _within(hits.sum(1), counts.sum(1))
    iri = _within(hits.sum(0), counts.sum(0))
    tgt = _within(hpt.sum(0), npt.sum(0))
    everything = _within(hits.sum(), counts.sum())
    independent = _half(everything - person - tgt + pt)  # nothing in common
    same_person = _half(person - pt)  # one participant, IRIs of different targets
    same_iri = _half(iri - cell)  # one IRI, different participants
    same_target = _half(tgt - pt - (iri - cell))  # one target, other IRI, other participant
    if not (np.isfinite(independent) and np.isfinite(same_person) and np.isfinite(same_iri)):
        level = design.levels[c]
        raise ConfigError(
            f"Variance components of {'the answers' if level is None else repr(level)} need "
            "at least 2 participants who each answered IRIs of 2 targets, and IRIs answered by "
            f"2 participants; this pilot has {hits.shape[0]} participants, {hits.shape[1]} IRIs "
            f"and {int(counts.sum())} answers. Collect a pilot where IRIs are seen by several "
            "participants."
        )
    participant = independent - same_person
    between_iris = independent - same_iri
    between_targets = independent - same_target if np.isfinite(same_target) else 0.0
    return Components(
        level=design.levels[c],
        mean=float(hits.sum() / counts.sum()),
        participant=participant,
        target=between_targets,
        iri=between_iris - between_targets,
        residual=independent - participant - between_iris,
        layout=Layout.of(design, c),
    )
