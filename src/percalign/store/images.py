"""8-bit PNG files: what people and judges see, read and written exactly."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch

from percalign.data.images import read_image

__all__ = ["png_bytes", "read_png", "write_png"]


def png_bytes(image: torch.Tensor) -> bytes:
    """Encode one (C, H, W) image in [0, 1] (C = 1 or 3) as an 8-bit PNG."""
    from PIL import Image

    arr = torch.round(image.detach().cpu().clamp(0, 1) * 255).to(torch.uint8)
    arr_np = arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr_np)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: Path, image: torch.Tensor) -> str:
    """Write ``image`` to ``path`` as PNG; return the file's SHA-256."""
    data = png_bytes(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_png(path: Path) -> torch.Tensor:
    """Read an image written by :func:`write_png` back exactly, as (C, H, W) float in [0, 1]."""
    return read_image(path)
