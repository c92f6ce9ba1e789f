"""What a participant's device must offer to take part: a minimum window, a pointer type, a
browser (pure).

A study declares them when it is built (``[survey] requirements``, ``survey build
--require-*``). The participant page checks them before consent and the service checks them
again when a session starts: someone who does not meet them is told so with the platform's
next step, and counted by reason (``/api/admin/progress``), never stored as a participant.
The browser is read from the ``User-Agent`` header; the window and pointer from the page.
Both can be faked by a determined participant: the checks keep honest participants on
unsuitable devices out, they are not a security boundary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from percalign._checks import check_choice, check_int
from percalign.errors import ConfigError

__all__ = ["BROWSERS", "POINTERS", "Requirements", "browser_of", "parse_browsers"]

#: Browser families a study can require (Chromium-based browsers other than Edge read as
#: ``chrome``, as their User-Agent says).
BROWSERS = ("chrome", "edge", "firefox", "safari")
#: ``mouse``: a fine pointer (mouse, trackpad); ``touch``: a coarse one (a finger).
POINTERS = ("any", "mouse", "touch")


def browser_of(user_agent: str) -> tuple[str | None, int | None]:
    """(family, major version) of a User-Agent string; (None, None) when unknown.

    >>> browser_of("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    ...            "Chrome/120.0.0.0 Safari/537.36")
    ('chrome', 120)
    >>> browser_of("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    ...            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
    ('safari', 17)
    """
    for family, pattern in (
        ("edge", r"Edg(?:e|A|iOS)?/(\d+)"),
        ("firefox", r"(?:Firefox|FxiOS)/(\d+)"),
        ("chrome", r"(?:Chrome|CriOS)/(\d+)"),
        ("safari", r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"),
    ):
        found = re.search(pattern, user_agent or "")
        if found:
            return family, int(found.group(1))
    return None, None


@dataclass(frozen=True)
class Requirements:
    """What a participant's device must offer.

    Attributes:
        min_width, min_height: the browser window's inner size in CSS pixels, at least.
        pointer: ``any``, ``mouse`` (a fine pointer) or ``touch`` (a coarse one).
        browsers: accepted browser families and the least major version of each (0: any
            version); empty: any browser.
    """

    min_width: int = 0
    min_height: int = 0
    pointer: str = "any"
    browsers: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "Requirements"
        check_int(owner, "min_width", self.min_width, low=0, high=10_000)
        check_int(owner, "min_height", self.min_height, low=0, high=10_000)
        check_choice(owner, "pointer", self.pointer, POINTERS)
        for name, version in self.browsers.items():
            check_choice(owner, "browsers", name, BROWSERS)
            check_int(owner, f"browsers.{name}", version, low=0)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Requirements:
        """From a spec's table or a study's stored meta (None: no requirements)."""
        data = dict(data or {})
        unknown = set(data) - {"min_width", "min_height", "pointer", "browsers"}
        if unknown:
            raise ConfigError(
                f"Unknown requirement(s) {sorted(unknown)}; use min_width, min_height, "
                "pointer, browsers."
            )
        return cls(**{**data, "browsers": dict(data.get("browsers") or {})})

    @property
    def any(self) -> bool:
        """Whether anything is required."""
        return bool(self.min_width or self.min_height or self.pointer != "any" or self.browsers)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "browsers": dict(self.browsers)}

    def unmet(
        self, width: int | None, height: int | None, pointer: str | None, user_agent: str
    ) -> dict[str, str]:
        """What the device lacks, by kind (``width``, ``height``, ``pointer``, ``browser``),
        in a few words each (empty: it meets them all).

        >>> Requirements(min_width=800, pointer="mouse").unmet(375, 667, "touch", "")
        {'width': 'a window at least 800 px wide (this one: 375 px)', 'pointer': 'a mouse or trackpad'}
        """  # noqa: E501
        lacks = {}
        if self.min_width and (width or 0) < self.min_width:
            lacks["width"] = f"a window at least {self.min_width} px wide (this one: {width} px)"
        if self.min_height and (height or 0) < self.min_height:
            lacks["height"] = f"a window at least {self.min_height} px high (this one: {height} px)"
        if self.pointer != "any" and pointer != self.pointer:
            lacks["pointer"] = (
                "a mouse or trackpad" if self.pointer == "mouse" else "a touch screen"
            )
        if self.browsers:
            family, version = browser_of(user_agent)
            least = self.browsers.get(family or "")
            if least is None or (version or 0) < least:
                lacks["browser"] = "one of these browsers: " + ", ".join(
                    f"{name} {v} or newer" if v else name for name, v in self.browsers.items()
                )
        return lacks


def parse_browsers(text: str) -> dict[str, int]:
    """``chrome>=110,firefox`` as ``{"chrome": 110, "firefox": 0}`` (the CLI's form).

    >>> parse_browsers("chrome>=110, firefox")
    {'chrome': 110, 'firefox': 0}
    """
    found: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([a-z]+)(?:>=(\d+))?", part)
        if m is None:
            raise ConfigError(
                f"Cannot read the browser requirement {part!r}; write NAME or NAME>=VERSION, "
                f"comma-separated, NAME one of {', '.join(BROWSERS)}."
            )
        found[m.group(1)] = int(m.group(2) or 0)
    return found
