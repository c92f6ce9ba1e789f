"""Validity gate: is an IRI's representation distance small compared with natural variation?

For a model and objective, the null distribution is the relative representation distance
between random pairs of *different* natural images. An IRI is valid when its distance lies
below a low percentile (default the 1st) of that null: it is closer to its target, in the
model's eyes, than almost any two distinct natural images are to each other.

A null belongs to one layer objective, and says so: :meth:`NullDistribution.valid` judges an
:class:`~percalign.inversion.InversionResult` only when every IRI in it was inverted at that
objective, and bare distances only with ``objective=`` named; :func:`validity` judges a result
of several objectives with one null per objective. A null is never applied to another layer's
IRIs by accident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from percalign._checks import check_float, check_int
from percalign.errors import ConfigError
from percalign.inversion.config import Objective
from percalign.inversion.objective import feature_norm, relative_distance
from percalign.models.model import Model

if TYPE_CHECKING:
    from percalign.inversion.engine import InversionResult

__all__ = ["NullDistribution", "gate_warning", "null_distribution", "validity"]


@dataclass(frozen=True)
class NullDistribution:
    """Distances between distinct natural images for one model and objective.

    Attributes:
        objective: the layer objective (``penultimate``, ``0.5*layer3+layer4``).
        distances: (P,) relative distances of the sampled ordered pairs.
        percentile: the percentile that sets the threshold.
        threshold: IRIs with a distance strictly below it are valid.
    """

    objective: str
    distances: np.ndarray
    percentile: float
    threshold: float

    def valid(
        self,
        iris: InversionResult | torch.Tensor | np.ndarray,
        *,
        objective: str | None = None,
    ) -> np.ndarray:
        """Boolean validity flags of IRIs inverted at this null's objective.

        Args:
            iris: an inversion result whose IRIs all have this objective (for a result of
                several objectives use :func:`validity`), or their distances.
            objective: with bare distances, the objective they were measured at (required:
                it must be this null's).

        Raises:
            ConfigError: the IRIs or distances belong to another objective, or bare distances
                come without ``objective``.
        """
        if isinstance(iris, (torch.Tensor, np.ndarray)):
            if objective is None:
                raise ConfigError(
                    f"NullDistribution.valid(distances) needs objective= (this null is "
                    f"{self.objective!r}'s); or pass the InversionResult itself."
                )
            self._check({objective})
            return np.asarray(iris, dtype=np.float64) < self.threshold
        self._check(set(iris.objective))
        return iris.distance.detach().cpu().numpy().astype(np.float64) < self.threshold

    def _check(self, objectives: set[str]) -> None:
        other = sorted(objectives - {self.objective})
        if other:
            raise ConfigError(
                f"The validity null of {self.objective!r} cannot judge IRIs of {other[0]!r}: "
                "each objective has its own null; use percalign.inversion.validity(result, "
                "nulls) with one null per objective."
            )

    def summary(self) -> dict[str, float | int | str]:
        d = self.distances
        return {
            "objective": self.objective,
            "pairs": int(d.size),
            "percentile": self.percentile,
            "threshold": self.threshold,
            "median": float(np.median(d)),
            "min": float(d.min()),
        }


def null_distribution(
    model: Model,
    images: torch.Tensor,
    objective: str | Objective = "penultimate",
    *,
    percentile: float = 1.0,
    max_pairs: int = 20000,
    seed: int = 0,
    p: float = 2.0,
    token_pool: str | None = None,
    batch_size: int = 256,
) -> NullDistribution:
    """Sample the null distribution of ``objective`` distances over pairs of ``images``.

    Args:
        model: the model.
        images: (N, C, H, W) natural images in [0, 1], N >= 2.
        objective: the layer objective, as in :func:`~percalign.inversion.invert`.
        percentile: in (0, 100); the validity threshold is this percentile of the null.
        max_pairs: all ordered pairs are used when there are at most this many; else a
            seeded sample of this size.
        seed, p, token_pool: as in the inversion. (The inversion's ``fake_relu`` changes only
            gradients, never distances, so the null does not depend on it.)
    """
    check_float("null_distribution", "percentile", percentile, low=0.0, high=100.0, low_open=True)
    check_int("null_distribution", "max_pairs", max_pairs, low=1)
    obj = objective if isinstance(objective, Objective) else Objective.parse(objective)
    n = len(images)
    if n < 2:
        raise ConfigError(
            "The validity null needs at least 2 natural images; got "
            f"{n}. Use more images (--null-images)."
        )
    model.check_input(images)
    extractor = model.extractor(obj.layers, token_pool=token_pool)
    images = images.to(model.device, torch.float32)
    with torch.no_grad():
        chunks = [extractor(images[i : i + batch_size]) for i in range(0, n, batch_size)]
    feats = {name: torch.cat([c[name] for c in chunks]).float() for name in obj.layers}
    rng = np.random.default_rng(seed)
    total_pairs = n * (n - 1)
    if total_pairs <= max_pairs:
        a, b = np.where(~np.eye(n, dtype=bool))
    else:
        a = rng.integers(0, n, size=max_pairs)
        b = (a + rng.integers(1, n, size=max_pairs)) % n  # never equal to a
    a_t, b_t = torch.as_tensor(a, device=model.device), torch.as_tensor(b, device=model.device)
    total = torch.zeros(len(a), device=model.device)
    for name, weight in obj.terms:
        f = feats[name]
        norms = feature_norm(f, p)
        for s in range(0, len(a), 4096):
            sl = slice(s, s + 4096)
            total[sl] += weight * relative_distance(f[a_t[sl]], f[b_t[sl]], norms[b_t[sl]], p)
    distances = total.cpu().numpy().astype(np.float64)
    return NullDistribution(
        obj.name, distances, float(percentile), float(np.percentile(distances, percentile))
    )


def validity(
    result: InversionResult,
    nulls: Mapping[str, NullDistribution] | Iterable[NullDistribution],
) -> np.ndarray:
    """(M,) validity flags of every IRI of ``result``, each by the null of its own objective.

    ``nulls`` is a mapping from objective name to null, or the nulls themselves (each knows
    its objective).

    Raises:
        ConfigError: an objective of ``result`` has no null, or a null is filed under another
            objective's name.
    """
    if isinstance(nulls, Mapping):
        for name, null in nulls.items():
            if null.objective != name:
                raise ConfigError(
                    f"The null filed under {name!r} is {null.objective!r}'s; key each null by "
                    "its own objective (null.objective)."
                )
        by_objective = dict(nulls)
    else:
        by_objective = {null.objective: null for null in nulls}
    missing = sorted(set(result.objective) - set(by_objective))
    if missing:
        raise ConfigError(
            f"No validity null for objective {missing[0]!r} (nulls given: "
            f"{sorted(by_objective)}); make one with null_distribution(model, images, "
            f"{missing[0]!r})."
        )
    distance = result.distance.detach().cpu().numpy().astype(np.float64)
    thresholds = np.array([by_objective[name].threshold for name in result.objective])
    return distance < thresholds


def gate_warning(
    objective: str,
    valid: np.ndarray,
    saturation: np.ndarray,
    parameterization: str,
    steps: int,
    loss: str = "regularizer-free",
) -> str | None:
    """One line naming the likely cause and the fix when most IRIs failed the gate, else None.

    Args:
        objective: the layer objective.
        valid: (M,) validity flags of its IRIs.
        saturation: (M,) share of each IRI's values at exactly 0 or 1, beyond its target's.
        parameterization: the parameterization used (``pixel``, ``sigmoid``, ``fourier``).
        steps: the steps each image was given.
        loss: the loss family; one that trades the distance against another term (a prior,
            random transforms, a perceptual adversary) need not reach the gate.

    >>> print(gate_warning("penultimate", np.array([False, False, True]),
    ...                    np.array([0.8, 0.7, 0.1]), "pixel", 1000))  # doctest: +ELLIPSIS
    Only 1 of 3 IRIs (33%) at penultimate passed the validity gate; ...clamped pixels...
    """
    valid = np.asarray(valid, dtype=bool)
    if valid.size == 0 or valid.mean() >= 0.5:
        return None
    failed = np.asarray(saturation, dtype=float)[~valid]
    saturated = float(np.median(failed))
    head = (
        f"Only {int(valid.sum())} of {valid.size} IRIs ({100 * valid.mean():.0f}%) at "
        f"{objective} passed the validity gate; "
    )
    if loss != "regularizer-free":
        return head + (
            f"the {loss} loss trades the representation distance against another term, so "
            "its IRIs need not be identically represented; read its alignment with that in "
            "mind (only valid IRIs are judged)."
        )
    if parameterization == "pixel" and saturated >= 0.25:
        return head + (
            f"the failed ones have {100 * saturated:.0f}% more of their values at 0 or 1 than "
            "their targets, so the clamped pixels saturated (steps too large for the box, or "
            "a clamp that stops the gradient at the bounds): use a smaller step (--lr) or "
            "sigmoid pixels (the default preset: --preset default, or parameterization = "
            "'sigmoid')."
        )
    return head + (
        f"the optimization did not get close enough in {steps} steps: give it more steps "
        "(--steps) or check the learning rate; their IRIs are not evidence of alignment."
    )
