"""Extension points that a higher layer fills for a lower one, without an import upward.

The model registry (``percalign.models``) must offer the trained zoo (``percalign.training``,
which sits above it). Instead of importing it, the registry runs the *providers* named for
its extension point on first use. The root package names percalign's own providers; a
plugin names its own with :func:`provide`. Naming a provider imports nothing.

>>> provide("example-point", "percalign._plugins:_example")
>>> run("example-point")
>>> _EXAMPLE
['ran']
>>> run("example-point")  # once only
>>> _EXAMPLE
['ran']
"""

from __future__ import annotations

import importlib

from percalign.errors import ConfigError

__all__ = ["provide", "run"]

_PROVIDERS: dict[str, list[str]] = {}
_RAN: set[tuple[str, str]] = set()
_EXAMPLE: list[str] = []


def provide(point: str, target: str) -> None:
    """Name ``target`` (``"package.module:function"``) a provider of ``point`` (idempotent)."""
    module, _, function = target.partition(":")
    if not module or not function:
        raise ConfigError(f"A provider is named 'package.module:function'; got {target!r}.")
    providers = _PROVIDERS.setdefault(point, [])
    if target not in providers:
        providers.append(target)


def run(point: str) -> None:
    """Import and call, in the order named, every provider of ``point`` not yet run."""
    for target in list(_PROVIDERS.get(point, [])):
        if (point, target) in _RAN:
            continue
        module, _, function = target.partition(":")
        getattr(importlib.import_module(module), function)()
        _RAN.add((point, target))


def _example() -> None:
    _EXAMPLE.append("ran")
