"""One exception tree for everything percalign raises on purpose.

Every class derives from :class:`PercalignError` and from the builtin that fits, so
callers can catch either ``PercalignError`` or, for example, ``ValueError``.
Messages are one line: what was wrong, what was received, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "ImageReadError",
    "InputShapeError",
    "MissingExtraError",
    "MissingFileError",
    "NumericalError",
    "OutputExistsError",
    "PercalignError",
    "ServiceError",
    "UnknownNameError",
    "WeightsError",
    "WeightsNotFoundError",
    "missing_extra",
    "unknown_name",
]


class PercalignError(Exception):
    """Base class of every error percalign raises on purpose."""


class ConfigError(PercalignError, ValueError):
    """A parameter or setting has a value that is not allowed."""


class UnknownNameError(PercalignError, LookupError):
    """A model, layer, data source, loss or other named thing does not exist."""


class InputShapeError(PercalignError, ValueError):
    """A tensor or image has the wrong shape, channel count, dtype or range."""


class ImageReadError(PercalignError, OSError):
    """An image file could not be read or decoded."""


class MissingFileError(PercalignError, FileNotFoundError):
    """A file or folder the user named does not exist or is not of the expected kind."""


class WeightsNotFoundError(MissingFileError):
    """Model weights are missing and could not be fetched."""


class WeightsError(PercalignError, ValueError):
    """A weights file exists but does not fit the model."""


class NumericalError(PercalignError, ArithmeticError):
    """A loss or distance became NaN or infinite."""


class ServiceError(PercalignError, ConnectionError):
    """A service (the survey server) could not be reached or kept failing."""


class OutputExistsError(PercalignError, FileExistsError):
    """An output folder or file already exists and would be overwritten."""


class MissingExtraError(PercalignError, ImportError):
    """An optional part of percalign needs a package that is not installed.

    ``extra`` is the percalign extra that installs it; the message names the ``pip install``.
    """

    def __init__(self, message: str, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


def missing_extra(what: str, extra: str, package: str | None = None) -> MissingExtraError:
    """Build the :class:`MissingExtraError` for ``what`` when the ``extra`` is not installed.

    >>> str(missing_extra("The Ray backend", "ray"))
    "The Ray backend needs the optional package 'ray'; install it: pip install 'percalign[ray]'"
    """
    return MissingExtraError(
        f"{what} needs the optional package {package or extra!r}; install it: "
        f"pip install 'percalign[{extra}]'",
        extra,
    )


def unknown_name(
    kind: str, name: str, choices: Iterable[str], hint: str = "", where: str = ""
) -> UnknownNameError:
    """Build an :class:`UnknownNameError` that names close matches.

    >>> str(unknown_name("model", "tiny-cn", ["tiny-cnn", "resnet50"]))
    "Unknown model 'tiny-cn'. Did you mean 'tiny-cnn'?"
    """
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if close:
        suggestion = " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    elif 0 < len(choices) <= 12:
        suggestion = " Choose one of: " + ", ".join(choices) + "."
    else:
        suggestion = ""
    place = f" {where}" if where else ""
    return UnknownNameError(
        f"Unknown {kind} {name!r}{place}.{suggestion}{' ' + hint if hint else ''}"
    )
