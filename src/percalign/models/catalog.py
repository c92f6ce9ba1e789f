"""The tables model sources fill: registered factories and the list of sources.

The registry (:mod:`percalign.models.registry`) asks them in :func:`~percalign.models.load`;
the built-in sources (:mod:`~percalign.models.tiny`, :mod:`~percalign.models.cifar`,
:mod:`~percalign.models.hub`) and the trained zoo fill them, through :func:`register` and
:func:`add_source`, when the registry first needs them. Importing a module registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from torch import nn

from percalign.errors import ConfigError
from percalign.models.spec import ModelSpec

__all__ = ["RANDOM_WEIGHTS", "Source", "add_source", "find_head", "register"]

#: Weights values that mean "random initialization".
RANDOM_WEIGHTS = ("none", "random")


class Source(Protocol):
    """A place models come from (the registry, torchvision, timm, the zoo...)."""

    name: str

    def names(self) -> list[str]:
        """Every model name this source offers (may be long)."""

    def owns(self, name: str) -> bool:
        """Whether ``name`` is one of this source's models."""

    def build(self, name: str, weights: str | None) -> tuple[nn.Module, ModelSpec]:
        """The network and its spec; ``weights`` is None, 'none' or a source-specific tag."""


@dataclass(frozen=True)
class _Entry:
    summary: str
    build: Callable[[], tuple[nn.Module, ModelSpec]]


class _Registered:
    """Models registered by name with :func:`register` (the tiny test models, ...)."""

    name = "registered"

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def owns(self, name: str) -> bool:
        return name in self.entries

    def build(self, name: str, weights: str | None) -> tuple[nn.Module, ModelSpec]:
        if weights not in (None, *RANDOM_WEIGHTS):
            raise ConfigError(
                f"Model {name!r} has no weights named {weights!r}; pass 'none' or a weights file."
            )
        return self.entries[name].build()


_REGISTERED = _Registered()
_SOURCES: list[Source] = [_REGISTERED]


def register(
    name: str, summary: str
) -> Callable[
    [Callable[[], tuple[nn.Module, ModelSpec]]], Callable[[], tuple[nn.Module, ModelSpec]]
]:
    """Decorator: register a factory returning ``(network, spec)`` under ``name``."""

    def wrap(factory: Callable[[], tuple[nn.Module, ModelSpec]]):
        _REGISTERED.entries[name] = _Entry(summary, factory)
        return factory

    return wrap


def add_source(source: Source, first: bool = False) -> None:
    """Make another model source visible to :func:`load` (checked after the registry)."""
    if any(s.name == source.name for s in _SOURCES):
        return
    _SOURCES.insert(1 if first else len(_SOURCES), source)


def find_head(module: nn.Module) -> str | None:
    """Path of the last ``nn.Linear`` registered in ``module``: its classifier, by convention."""
    head = None
    for path, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            head = path
    return head
