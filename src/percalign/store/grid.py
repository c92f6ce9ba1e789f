"""A contact sheet of an inversion run: per target, the target, then each seed and its IRI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

__all__ = ["GridRows", "run_grid"]


class GridRows(Protocol):
    """What a contact sheet reads of a run (an :class:`~percalign.inversion.InversionResult`
    has it): M rows of (target, seed, objective), and the T targets."""

    @property
    def targets(self) -> torch.Tensor: ...  # (T, C, H, W)
    @property
    def seeds(self) -> torch.Tensor: ...  # (M, C, H, W)
    @property
    def iris(self) -> torch.Tensor: ...  # (M, C, H, W)
    @property
    def target_index(self) -> torch.Tensor: ...  # (M,)
    @property
    def seed_kind(self) -> Sequence[str]: ...
    @property
    def seed_copy(self) -> Sequence[int]: ...
    @property
    def objective(self) -> Sequence[str]: ...
    def __len__(self) -> int: ...


_GAP = 4
_HEADER = 14


def _to_pil(image: torch.Tensor, scale: int):
    from PIL import Image

    arr = torch.round(image.clamp(0, 1) * 255).to(torch.uint8)
    arr = arr.expand(3, -1, -1) if arr.shape[0] == 1 else arr
    pil = Image.fromarray(arr.permute(1, 2, 0).numpy())
    return pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)


def run_grid(result: GridRows, path: Path, max_targets: int = 16) -> Path:
    """Write a PNG sheet: one row per target; columns target | seed | IRI | seed | IRI ...

    Small images are enlarged by an integer factor (nearest neighbour) to at least 96 px.
    """
    from PIL import Image, ImageDraw

    columns: list[tuple[str, int, str]] = []  # (seed kind, copy, objective), in result order
    for i in range(len(result)):
        key = (result.seed_kind[i], result.seed_copy[i], result.objective[i])
        if key not in columns:
            columns.append(key)
    index = {
        (
            int(result.target_index[i]),
            result.seed_kind[i],
            result.seed_copy[i],
            result.objective[i],
        ): i
        for i in range(len(result))
    }
    n_targets = min(len(result.targets), max_targets)
    h, w = result.targets.shape[-2:]
    scale = max(1, -(-96 // max(h, w)))
    cell_w, cell_h = w * scale, h * scale
    width = _GAP + (1 + 2 * len(columns)) * (cell_w + _GAP)
    height = _HEADER + _GAP + n_targets * (cell_h + _GAP)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((_GAP, 2), "target", fill=(0, 0, 0))
    for c, (kind, copy, objective) in enumerate(columns):
        x = _GAP + (1 + 2 * c) * (cell_w + _GAP)
        label = f"{kind}{'' if copy == 0 else f' #{copy + 1}'} | IRI {objective}"
        draw.text((x, 2), label[: (2 * cell_w) // 6], fill=(0, 0, 0))
    for t in range(n_targets):
        y = _HEADER + _GAP + t * (cell_h + _GAP)
        sheet.paste(_to_pil(result.targets[t], scale), (_GAP, y))
        for c, (kind, copy, objective) in enumerate(columns):
            row = index.get((t, kind, copy, objective))
            if row is None:
                continue
            x = _GAP + (1 + 2 * c) * (cell_w + _GAP)
            sheet.paste(_to_pil(result.seeds[row], scale), (x, y))
            sheet.paste(_to_pil(result.iris[row], scale), (x + cell_w + _GAP, y))
    sheet.save(path)
    return path
