"""Starting points ("seeds") of an inversion: noise, constant images, or natural images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from percalign._checks import check_int
from percalign.errors import ConfigError, unknown_name

__all__ = ["SEED_KINDS", "SeedSpec", "make_seed", "parse_seeds"]

SEED_KINDS = ("super-noise", "light-noise", "uniform", "white", "black", "grey", "image")


@dataclass(frozen=True)
class SeedSpec:
    """A seed type and how many different seeds of it each target gets."""

    kind: str
    count: int = 1

    def __post_init__(self) -> None:
        if self.kind not in SEED_KINDS:
            raise unknown_name("seed type", self.kind, SEED_KINDS)
        check_int("SeedSpec", "count", self.count, low=1)

    def __str__(self) -> str:
        return self.kind if self.count == 1 else f"{self.kind}:{self.count}"


def parse_seeds(spec: str | SeedSpec | Sequence[str | SeedSpec]) -> tuple[SeedSpec, ...]:
    """Parse ``"super-noise,image:2"`` (or a list of such items) into :class:`SeedSpec` s."""
    items = (
        spec.split(",")
        if isinstance(spec, str)
        else [spec]
        if isinstance(spec, SeedSpec)
        else list(spec)
    )
    out: list[SeedSpec] = []
    for item in items:
        if isinstance(item, SeedSpec):
            out.append(item)
            continue
        kind, _, count = item.strip().partition(":")
        try:
            n = int(count) if count else 1
        except ValueError:
            raise ConfigError(
                f"Seed count in {item!r} must be an integer, as in 'image:2'."
            ) from None
        out.append(SeedSpec(kind, n))
    if not out:
        raise ConfigError(
            "No seed types given; use for example 'super-noise' or 'super-noise,image'."
        )
    return tuple(out)


def make_seed(
    kind: str,
    shape: tuple[int, int, int],
    generator: torch.Generator,
    target_index: int,
    pool: torch.Tensor | None = None,
    pool_labels: torch.Tensor | None = None,
    target_label: int | None = None,
    exclude_self: bool = True,
    copy: int = 0,
) -> tuple[torch.Tensor, int | None]:
    """One seed image (C, H, W), and the pool index used if it is a natural image.

    Noise seeds follow the paper: super-noise is N(0, 1) per pixel, light-noise 0.01 * N(0, 1),
    returned raw (unclamped; clamped to [0, 1], about half their pixels are 0). ``image`` takes
    an image of ``pool`` (never the target itself when ``exclude_self``, i.e. when the pool is
    the target set; of another label than ``target_label`` when labels are known and one
    exists). For ``image`` seeds, ``generator`` must depend on the target alone, not on
    ``copy``: the copies then take successive entries of one permutation, so they are all
    different images.
    """
    if kind == "super-noise":
        return torch.randn(shape, generator=generator), None
    if kind == "light-noise":
        return 0.01 * torch.randn(shape, generator=generator), None
    if kind == "uniform":
        return torch.rand(shape, generator=generator), None
    constants = {"white": 1.0, "black": 0.0, "grey": 0.5}
    if kind in constants:
        return torch.full(shape, constants[kind]), None
    if pool is None:
        raise ConfigError("Seed type 'image' needs a pool of natural images.")
    candidates = [i for i in range(len(pool)) if not (exclude_self and i == target_index)]
    if pool_labels is not None and target_label is not None:
        other = [i for i in candidates if int(pool_labels[i]) != target_label]
        candidates = other or candidates
    if copy >= len(candidates):
        raise ConfigError(
            f"Seed type 'image' needs at least {copy + 1} other images per target; the pool has "
            f"{len(candidates)} eligible. Use more images or fewer image seeds."
        )
    order = torch.randperm(len(candidates), generator=generator)
    chosen = candidates[int(order[copy])]
    return pool[chosen].clone(), chosen
