"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture
def digits3() -> tuple[torch.Tensor, torch.Tensor]:
    """Eight digits as RGB 32x32 targets, with their labels."""
    from percalign.data import load_images, to_channels

    s = load_images("digits", 8, size=32, seed=1)
    return to_channels(s.images, 3), s.labels
