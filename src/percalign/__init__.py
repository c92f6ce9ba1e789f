"""percalign: measure how well vision models' representations align with human perception.

>>> import percalign as pa
>>> model = pa.models.load("tiny-cnn")
>>> images = pa.data.load_images("digits", 2, size=32)
>>> targets = pa.data.to_channels(images.images, 3)
>>> result = pa.invert(model, targets, config=pa.InversionConfig(steps=5))
>>> tuple(result.iris.shape)
(2, 3, 32, 32)
"""

from __future__ import annotations

import importlib
from typing import Any

from percalign import _plugins, errors
from percalign.errors import PercalignError

__version__ = "0.1.0"

# The trained zoo is a model source; percalign.models finds it through this extension
# point, so that models (below training) never imports training.
_plugins.provide("model-sources", "percalign.training.zoo:install")

# Heavy parts (torch) load on first use, so that light users such as the survey web service
# can import percalign.survey without them.
_SUBMODULES = (
    "data",
    "inversion",
    "judges",
    "models",
    "scoring",
    "store",
    "study",
    "survey",
    "training",
    "trust",
)
_FROM_INVERSION = ("InversionConfig", "InversionResult", "invert", "null_distribution", "validity")

__all__ = [
    "InversionConfig",
    "InversionResult",
    "PercalignError",
    "__version__",
    "data",
    "errors",
    "inversion",
    "invert",
    "judges",
    "models",
    "null_distribution",
    "scoring",
    "store",
    "study",
    "survey",
    "training",
    "trust",
    "validity",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"percalign.{name}")
    if name in _FROM_INVERSION:
        return getattr(importlib.import_module("percalign.inversion"), name)
    raise AttributeError(f"module 'percalign' has no attribute {name!r}")
