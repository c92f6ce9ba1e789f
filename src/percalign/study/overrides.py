"""``--set SECTION.KEY=VALUE``: change a spec's settings from the command line.

An override is applied to the parsed TOML before it is validated, so it goes through the same
checks as the file (unknown keys with close matches, types, ranges). ``VALUE`` is read as a
TOML value (``5``, ``0.5``, ``true``, ``["ssim"]``), else as a string. ``models.*.KEY`` sets
``KEY`` in every ``[[models]]`` entry, ``models.2.KEY`` in the second; below ``*``, a table
an entry does not have (``models.*.train.epochs`` for a model that is not trained) is left
alone. The study folder gets the spec with the overrides applied (:func:`dump_spec`), so the
report and a later run see what ran.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from percalign.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["apply_overrides", "dump_spec"]


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set(table: dict[str, Any], path: list[str], value: Any, strict: bool, item: str) -> None:
    for name in path[:-1]:
        inner = table.get(name)
        if inner is None and not strict:
            return
        if inner is None:
            inner = table[name] = {}
        if not isinstance(inner, dict):
            raise ConfigError(f"--set {item}: {name} is not a table.")
        table = inner
    table[path[-1]] = value


def apply_overrides(data: dict[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """``data`` (a parsed spec) with each ``SECTION.KEY=VALUE`` of ``sets`` applied.

    >>> apply_overrides({"images": {"n": 48}}, ["images.n=4", "bots.n=2"])
    {'images': {'n': 4}, 'bots': {'n': 2}}
    >>> apply_overrides({"models": [{"name": "a", "train": {"epochs": 9}}, {"name": "b"}]},
    ...                 ["models.*.train.epochs=1"])["models"]
    [{'name': 'a', 'train': {'epochs': 1}}, {'name': 'b'}]
    """
    out = json.loads(json.dumps(data))
    for item in sets:
        where, eq, text = item.partition("=")
        path = [p.strip() for p in where.split(".")]
        if not eq or len(path) < 2 or not all(path):
            raise ConfigError(
                f"--set takes SECTION.KEY=VALUE (e.g. inversion.steps=100); got {item!r}."
            )
        value = _value(text.strip())
        if path[0] != "models":
            _set(out, path, value, True, item)
            continue
        entries = out.get("models", [])
        which, rest = path[1], path[2:]
        if not rest:
            raise ConfigError(f"--set {item}: write models.*.KEY or models.N.KEY.")
        if which == "*":
            for entry in entries:
                _set(entry, rest, value, len(rest) == 1, item)
        elif which.isdigit() and 1 <= int(which) <= len(entries):
            _set(entries[int(which) - 1], rest, value, True, item)
        else:
            raise ConfigError(
                f"--set {item}: the spec has {len(entries)} [[models]] entries; write "
                "models.* or models.N with N from 1."
            )
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"Cannot write {value!r} in a spec.")
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"Cannot write {value!r} in a spec.")


def dump_spec(data: dict[str, Any], header: str = "") -> str:
    """A spec's parsed TOML ``data`` as TOML text (tables, ``[[models]]``, inline tables).

    >>> text = dump_spec({"study": {"seed": 1}, "models": [{"name": "a"}]})
    >>> tomllib.loads(text) == {"study": {"seed": 1}, "models": [{"name": "a"}]}
    True
    """
    lines = [f"# {line}" for line in header.splitlines()]
    for name, section in data.items():
        if name == "models":
            for entry in section:
                lines += ["", "[[models]]", *(f"{k} = {_toml(v)}" for k, v in entry.items())]
        else:
            lines += ["", f"[{name}]", *(f"{k} = {_toml(v)}" for k, v in section.items())]
    return "\n".join(lines).lstrip("\n") + "\n"
