"""Settings defined once: dataclass fields with help text, and what is derived from them.

A component's settings are one frozen dataclass whose fields carry their help in
``metadata`` (:func:`setting`). From it come the study spec's section (type checks with
close matches: :func:`check_table`), the command-line options (:func:`add_options`,
:func:`options_from`) and the reference in ``docs/study.md`` (:func:`reference`), so a default
or a help text changed in the dataclass changes all three. A field's constraint
(:class:`Interval`, :class:`OneOf`) is declared on it once, like scikit-learn's parameter
constraints: :func:`check_settings` applies it where the dataclass is made, and
:func:`check_table` where a spec section is read, in one message template (``_checks``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from percalign._checks import check_choice, check_float, check_int
from percalign.errors import ConfigError, unknown_name

__all__ = [
    "Interval",
    "OneOf",
    "add_options",
    "check_settings",
    "check_table",
    "default_of",
    "doc_default",
    "help_of",
    "options_from",
    "reference",
    "setting",
    "type_name",
    "type_ok",
]

_UNSET: Any = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) in [low, high] (``low_open``: above ``low``);
    None passes (whether a field may be None is its type's business)."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def check(self, owner: str, name: str, value: Any) -> None:
        if value is None:
            return
        if self.kind is int:
            check_int(owner, name, value, self.low, self.high)  # type: ignore[arg-type]
        else:
            check_float(owner, name, value, self.low, self.high, self.low_open)


@dataclasses.dataclass(frozen=True)
class OneOf:
    """One of ``choices`` (a close match is named when it is not)."""

    choices: tuple[str, ...]

    def check(self, owner: str, name: str, value: Any) -> None:
        if value is not None:
            check_choice(owner, name, value, self.choices)


def setting(
    default: Any = _UNSET,
    help: str = "",
    *,
    factory: Any = _UNSET,
    shown: str | None = None,
    cli: bool = True,
    flag: str | None = None,
    check: Interval | OneOf | None = None,
) -> Any:
    """A dataclass field with its help text.

    Args:
        default: the default value (or ``factory`` for mutable ones).
        help: one or more sentences; the docs and ``--help`` show it.
        shown: how the docs and ``--help`` show the default when the value alone would not
            say it (``"the preset's"``).
        cli: whether commands offer it as an option.
        flag: the option's name when it is not ``--field-name``.
        check: the values it takes, checked by :func:`check_settings` and
            :func:`check_table`.
    """
    metadata = {"help": help, "shown": shown, "cli": cli, "flag": flag, "check": check}
    if factory is not _UNSET:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def help_of(f: dataclasses.Field) -> str:
    return str(f.metadata.get("help", ""))


def default_of(f: dataclasses.Field) -> Any:
    """The field's default value (a fresh one for mutable defaults); MISSING when required."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value) and abs(value) < 1e6:
        return f"{value:.1f}"
    return json.dumps(value)


def doc_default(f: dataclasses.Field, defaults: Mapping[str, Any] | None = None) -> str:
    """How the docs show the default of ``f`` (``defaults`` overrides the field's)."""
    if defaults and f.name in defaults:
        return _show(defaults[f.name])
    if f.metadata.get("shown"):
        return str(f.metadata["shown"])
    value = default_of(f)
    return "required" if value is dataclasses.MISSING else _show(value)


def _fields(
    cls: type, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> list[dataclasses.Field]:
    chosen = [f for f in dataclasses.fields(cls) if f.init and f.name not in set(exclude)]
    if only is not None:
        names = list(only)
        by_name = {f.name: f for f in chosen}
        chosen = [by_name[n] for n in names]
    return chosen


def reference(
    cls: type,
    section: str,
    *,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """Markdown bullets, one per field: ``- `section.name` (default): help``."""
    lines = []
    for f in _fields(cls, exclude=exclude):
        lines.append(f"- `{section}.{f.name}` ({doc_default(f, defaults)}): {help_of(f)}")
    return lines


# ------------------------------------------------------------------- types (the spec's checks)
def type_ok(value: Any, hint: Any) -> bool:
    """Whether a TOML ``value`` fits the type ``hint`` (ints are numbers, bools are not)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (list, tuple):
        inner = typing.get_args(hint)[0]
        return isinstance(value, list) and all(type_ok(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def type_name(hint: Any) -> str:
    """``a string``, ``an integer``, ``a list of strings``... for messages."""
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(h) for h in typing.get_args(hint) if h is not type(None))
    if origin in (list, tuple):
        return f"a list of {type_name(typing.get_args(hint)[0]).split(' ', 1)[1]}s"
    if origin is dict:
        return "a table"
    return names.get(hint, str(hint))


def hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_settings(obj: Any, owner: str | None = None) -> None:
    """Check every field of the dataclass ``obj`` against the constraint declared on it.

    >>> @dataclasses.dataclass
    ... class Plan:
    ...     k: int = setting(4, check=Interval(int, 2))
    >>> try:
    ...     check_settings(Plan(k=1))
    ... except ConfigError as exc:
    ...     print(exc)
    The 'k' parameter of Plan must be an int in [2, inf). Got 1; the closest valid value is 2.
    """
    owner = owner or type(obj).__name__
    for f in dataclasses.fields(obj):
        rule = f.metadata.get("check")
        if rule is not None:
            rule.check(owner, f.name, getattr(obj, f.name))


def check_table(cls: type, data: Any, where: str, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """``data`` (a TOML table) checked against ``cls``'s fields: keys, types and the
    constraints the fields declare.

    Unknown keys are refused with close matches, values of the wrong type with what was
    expected, values out of range with the closest valid one; the message is one line naming
    ``where``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table ([{where.split('[')[-1]}); got {data!r}.")
    types_ = hints(cls)
    names = [f.name for f in _fields(cls, exclude=exclude)]
    for key, value in data.items():
        if key not in names:
            raise unknown_name("key", key, names, where=f"in {where}")
        if not type_ok(value, types_[key]):
            raise ConfigError(
                f"{where} {key} must be {type_name(types_[key])}; got {value!r} "
                f"({type(value).__name__})."
            )
    rules = {f.name: f.metadata.get("check") for f in dataclasses.fields(cls)}
    for key, value in data.items():
        rule = rules.get(key)
        if rule is not None:
            rule.check(where, key, value)
    return dict(data)


# ------------------------------------------------------------------------------- options
def _base(hint: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return tuple(h for h in typing.get_args(hint) if h is not type(None))
    return (hint,)


def _number_or_word(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    shown: Mapping[str, str] | None = None,
) -> None:
    """One ``--field-name`` option per field of ``cls`` (those with ``cli``), with its help.

    ``defaults`` replaces a field's default for these options (a value set elsewhere, such
    as a preset's ``None``), ``shown`` how ``--help`` names it. Booleans that default to
    false are flags; those that default to true or None get ``--no-NAME`` too; lists are
    comma-separated.
    """
    types_ = hints(cls)
    for f in _fields(cls, only, exclude):
        if not f.metadata.get("cli", True) and (only is None or f.name not in set(only)):
            continue
        base = _base(types_[f.name])
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        default = defaults[f.name] if defaults and f.name in defaults else default_of(f)
        text = help_of(f).split(". ")[0].rstrip(".")
        label = (shown or {}).get(f.name) or f.metadata.get("shown") or _show(default)
        help_text = f"{text} (default: {label})".replace("%", "%%")
        if base == (bool,):
            # --no-NAME where the default may be true (true, or None: set elsewhere)
            action = argparse.BooleanOptionalAction if default in (True, None) else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, default=default, help=help_text)
            continue
        if typing.get_origin(base[0]) in (list, tuple):
            kind: Any = _words
        elif set(base) == {float, str}:
            kind = _number_or_word
        elif base[0] in (int, float, str):
            kind = base[0]
        else:
            continue  # tables have no option
        parser.add_argument(flag, dest=f.name, type=kind, default=default, help=help_text)


def options_from(
    cls: type,
    args: argparse.Namespace,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> dict[str, Any]:
    """The values of the options :func:`add_options` made, by field name."""
    return {
        f.name: getattr(args, f.name) for f in _fields(cls, only, exclude) if hasattr(args, f.name)
    }
