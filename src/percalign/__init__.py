"""percalign: measure how well vision models' representations align with human perception.

>>> import percalign as pa
>>> model = pa.models.load("tiny-cnn")
>>> images = pa.data.load_images("digits", 2, size=32)
>>> targets = pa.data.to_channels(images.images, 3)
>>> result = pa.invert(model, targets, config=pa.InversionConfig(steps=5))
>>> tuple(result.iris.shape)
(2, 3, 32, 32)
"""

from percalign import data, errors, inversion, models
from percalign.errors import PercalignError
from percalign.inversion import InversionConfig, InversionResult, invert, null_distribution

__version__ = "0.1.0"

__all__ = [
    "InversionConfig",
    "InversionResult",
    "PercalignError",
    "__version__",
    "data",
    "errors",
    "inversion",
    "invert",
    "models",
    "null_distribution",
]
