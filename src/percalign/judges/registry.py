"""Judges by name. A judge is one class in one module of this package, with one decorator:

    @judge("ssim", summary="1 - SSIM (Wang et al. 2004)")
    class SSIM(Judge): ...

The decorator only marks the class; the registry finds the marked classes of this package's
modules on first use (importing a module registers nothing), and a plugin adds its own
through the ``judges`` extension point (:mod:`percalign._plugins`) with :func:`add_judge`.
A name ending in ``:NAME`` is a family: ``model:NAME`` stands for every ``model:...`` spec.
:func:`names`, :func:`differentiable_names` and :func:`summaries` list what is registered,
for the CLI help, error messages and documentation.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from percalign import _plugins
from percalign.errors import ConfigError, unknown_name
from percalign.judges.base import Judge

__all__ = [
    "JudgeEntry",
    "add_judge",
    "as_adversary",
    "differentiable_names",
    "find_judge",
    "get_adversary",
    "get_judge",
    "get_judges",
    "judge",
    "names",
    "summaries",
]

J = TypeVar("J", bound=type[Judge])
_FAMILY = ":NAME"


@dataclass(frozen=True)
class JudgeEntry:
    """A registered judge name and the class that builds it."""

    name: str
    summary: str
    cls: type[Judge]

    @property
    def differentiable(self) -> bool:
        return bool(self.cls.differentiable)

    def matches(self, spec: str) -> bool:
        if self.name.endswith(_FAMILY):
            return spec.startswith(self.name.removesuffix("NAME"))
        return spec == self.name


def judge(*judge_names: str, summary: str) -> Callable[[J], J]:
    """Class decorator: mark a :class:`Judge` subclass as the judge(s) ``judge_names``.

    The class builds itself from a spec with :meth:`Judge.from_name`.
    """
    if not judge_names:
        raise ConfigError("@judge needs at least one name, as in @judge('ssim', summary=...).")

    def mark(cls: J) -> J:
        cls.__judge_names__ = tuple(judge_names)  # type: ignore[attr-defined]
        cls.__judge_summary__ = summary  # type: ignore[attr-defined]
        return cls

    return mark


_ENTRIES: dict[str, JudgeEntry] = {}
_DISCOVERED = False


def add_judge(cls: type[Judge]) -> None:
    """Register a class marked with :func:`judge` (idempotent; for plugins' providers)."""
    marked = cls.__dict__.get("__judge_names__")
    if not marked:
        raise ConfigError(f"{cls.__name__} is not marked with @judge(...); it has no name.")
    for name in marked:
        _ENTRIES[name] = JudgeEntry(name, cls.__dict__["__judge_summary__"], cls)


def _entries() -> dict[str, JudgeEntry]:
    global _DISCOVERED
    if not _DISCOVERED:
        package = __name__.rpartition(".")[0]  # this package, without importing it here
        for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
            module = importlib.import_module(f"{package}.{info.name}")
            for value in vars(module).values():
                if isinstance(value, type) and "__judge_names__" in value.__dict__:
                    add_judge(value)
        _plugins.run("judges")
        _DISCOVERED = True
    return _ENTRIES


def _sorted() -> list[JudgeEntry]:
    """Entries by name, families (``model:NAME``) last."""
    return sorted(_entries().values(), key=lambda e: (e.name.endswith(_FAMILY), e.name))


def names() -> list[str]:
    """Every registered judge name, by name, families (written ``model:NAME``) last."""
    return [e.name for e in _sorted()]


def differentiable_names() -> list[str]:
    """The judges whose distance carries gradients (possible adversaries)."""
    return [e.name for e in _sorted() if e.differentiable]


def summaries() -> dict[str, str]:
    """Judge name -> one-line description, in the order of :func:`names`."""
    return {e.name: e.summary for e in _sorted()}


def find_judge(spec: str) -> JudgeEntry:
    """The registry entry of a judge name, without building the judge (which may load
    weights); unknown names are refused with close matches.

    >>> find_judge("ssim").name
    'ssim'
    """
    spec = spec.strip()
    for entry in _entries().values():
        if entry.matches(spec):
            return entry
    families = [n for n in names() if n.endswith(_FAMILY)]
    raise unknown_name(
        "judge",
        spec,
        [n for n in names() if n not in families],
        hint=" ".join(f"{n} is a family: any {n.removesuffix('NAME')}... spec." for n in families),
    )


def get_judge(spec: str, device: torch.device | str = "cpu") -> Judge:
    """Build one judge from its name (see :func:`names`)."""
    return find_judge(spec).cls.from_name(spec.strip(), device)


def get_judges(specs: str | Sequence[str], device: torch.device | str = "cpu") -> list[Judge]:
    """Judges from a comma-separated string or a list of names."""
    specs_list = [s for s in (specs.split(",") if isinstance(specs, str) else specs) if s.strip()]
    if not specs_list:
        raise ConfigError("No judges given; use for example --judges pixel,ssim.")
    return [get_judge(n, device) for n in specs_list]


def as_adversary(judge: Judge) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``judge``'s distance as the perceptual term of the adversarial loss (with gradients)."""
    if not judge.differentiable:
        raise ConfigError(
            f"Judge {judge.name!r} has no gradient, so it cannot be the adversary of the "
            "adversarial loss; use a differentiable one: " + ", ".join(differentiable_names()) + "."
        )
    return judge.distance


def get_adversary(
    spec: str, device: torch.device | str = "cpu"
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The judge ``spec`` as the adversarial loss's perceptual distance (:func:`as_adversary`)."""
    return as_adversary(get_judge(spec, device))


def __getattr__(name: str) -> Any:
    # JUDGE_NAMES, the tuple callers used before the registry: now computed from it
    if name == "JUDGE_NAMES":
        return tuple(names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
