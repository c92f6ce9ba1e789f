"""Parameter checks shared by every config class: one message template, tested once.

The template follows scikit-learn's:
``The 'steps' parameter of InversionConfig must be an int in [1, inf). Got 0.``
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from percalign.errors import ConfigError


def _interval(low: float | None, high: float | None, closed_high: bool = True) -> str:
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"[{lo}, {hi}{']' if high is not None and closed_high else ')'}"


def check_int(
    owner: str, param: str, value: Any, low: int | None = None, high: int | None = None
) -> int:
    """Return ``value`` if it is an int in [low, high]; raise :class:`ConfigError` otherwise."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and (low is None or value >= low) and (high is None or value <= high):
        return int(value)
    raise ConfigError(
        f"The {param!r} parameter of {owner} must be an int in {_interval(low, high)}. "
        f"Got {value!r}{_closest(value, low, high) if ok else ''}."
    )


def _closest(value: float, low: float | None, high: float | None) -> str:
    """``; the closest valid value is X`` for a number outside [low, high]."""
    closest = value if low is None else max(value, low)
    closest = closest if high is None else min(closest, high)
    return f"; the closest valid value is {closest!r}" if closest != value else ""


def check_float(
    owner: str,
    param: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return ``float(value)`` if it is a finite number in the interval; raise otherwise."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and math.isfinite(value):
        above = low is None or (value > low if low_open else value >= low)
        if above and (high is None or value <= high):
            return float(value)
    interval = _interval(low, high)
    closest = ""
    if ok and math.isfinite(value) and not (low_open and low is not None and value <= low):
        closest = _closest(value, low, high)
    if low_open and low is not None:
        interval = "(" + interval[1:]
    raise ConfigError(
        f"The {param!r} parameter of {owner} must be a finite number in {interval}. "
        f"Got {value!r}{closest}."
    )


def check_choice(owner: str, param: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; raise with close matches otherwise."""
    choices = sorted(choices)
    if isinstance(value, str) and value in choices:
        return value
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]!r}?" if close else "."
    raise ConfigError(
        f"The {param!r} parameter of {owner} must be one of "
        f"{', '.join(repr(c) for c in choices)}. Got {value!r}{guess}"
    )
