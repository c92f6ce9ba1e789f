"""Describe a model's layers: path, module type and output shape, from one dry forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from percalign.models.model import Model

__all__ = ["LayerInfo", "describe_layers"]


@dataclass(frozen=True)
class LayerInfo:
    path: str
    kind: str
    shape: tuple[int, ...] | None  # output shape for one image; None if it did not run
    depth: int


def describe_layers(model: Model) -> list[LayerInfo]:
    """Every submodule in registration order, with its output shape on one blank image."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    if model.spec.hookable:
        for path, module in model.module.named_modules():
            if not path:
                continue

            def hook(_m, _a, out, path=path):
                while isinstance(out, (tuple, list)) and out:
                    out = out[0]
                if isinstance(out, torch.Tensor) and path not in shapes:
                    shapes[path] = tuple(out.shape[1:])

            handles.append(module.register_forward_hook(hook))
    h, w = model.spec.input_size
    try:
        with torch.no_grad():
            model.logits(torch.zeros(1, model.spec.in_chans, h, w, device=model.device))
    finally:
        for handle in handles:
            handle.remove()
    return [
        LayerInfo(path, type(module).__name__, shapes.get(path), path.count(".") + 1)
        for path, module in model.module.named_modules()
        if path
    ]
