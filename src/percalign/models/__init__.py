"""Model access: one :func:`load` for every source, and representations at any layer.

Sources, asked in order: registered models (tiny test networks, the trained zoo),
torchvision, timm (``timm:NAME`` to be explicit), and TorchScript files by path.
"""

from percalign.models.extractor import FeatureExtractor
from percalign.models.model import LayerRef, Model, ModelSpec
from percalign.models.registry import (
    Source,
    add_source,
    find_head,
    from_module,
    list_models,
    load,
    register,
    registered_summaries,
)

__all__ = [
    "FeatureExtractor",
    "LayerRef",
    "Model",
    "ModelSpec",
    "Source",
    "add_source",
    "find_head",
    "from_module",
    "list_models",
    "load",
    "register",
    "registered_summaries",
]
