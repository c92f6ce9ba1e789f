"""The paper preset is the authors' loop: checked against a reference written from its
description.

The reference below is written from the description of the authors' step alone
(docs/fidelity.md, "The loop"), not from percalign's engine: the model's normalization after
a clamp whose gradient is 1 on [0, 1] (the authors' PyTorch), a fake final ReLU, the
per-image relative L2 distance, a per-image L2-normalized step of 1.0 with 1e-10 added to
the norm, the projection onto [0, 1], the best iterate by strictly lower loss (the seed and
the last iterate count), and one raw N(0, 1) seed shared by every target.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from torch import nn

import percalign as pa
from percalign._random import stream
from percalign.data import load_images, to_channels
from percalign.inversion import InversionConfig, invert, quantize

MEAN, STD = (0.25,), (0.35,)


class _AuthorsClamp(torch.autograd.Function):
    """clamp(x, 0, 1) with the gradient of the authors' PyTorch: 1 where 0 <= x <= 1."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(0, 1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * ((x >= 0) & (x <= 1)).to(grad.dtype)


class _FakeReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.gap(torch.relu(self.conv2(x))).flatten(1)
        return self.fc(x)


def _penultimate(net: SmallCNN, x: torch.Tensor) -> torch.Tensor:
    """The authors' forward to the penultimate layer: clamp, normalize, the last ReLU fake."""
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    h = (_AuthorsClamp.apply(x) - mean) / std
    h = net.pool(torch.relu(net.conv1(h)))
    return net.gap(_FakeReLU.apply(net.conv2(h))).flatten(1)


def authors_loop(
    net: SmallCNN, targets: torch.Tensor, seed: torch.Tensor, steps: int, step_size: float = 1.0
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The best iterates (N, C, H, W) and each step's per-image loss, as the authors run it."""
    with torch.no_grad():
        goal = _penultimate(net, targets)
    x = seed.expand_as(targets).clone()
    best_loss = torch.full((len(targets),), float("inf"))
    best = x.clone()
    losses = []
    for i in range(steps + 1):
        x.requires_grad_(True)
        loss = (_penultimate(net, x) - goal).norm(dim=1) / goal.norm(dim=1)
        losses.append(loss.detach().clone())
        with torch.no_grad():
            better = loss < best_loss
            best_loss = torch.where(better, loss, best_loss)
            best[better] = x[better]
        if i == steps:
            break
        (grad,) = torch.autograd.grad(loss.sum(), x)
        with torch.no_grad():
            norm = grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            x = (x - step_size * (grad / (norm + 1e-10))).clamp(0, 1)
    return best, losses


@pytest.fixture(scope="module")
def small_cnn() -> tuple[SmallCNN, pa.models.Model]:
    torch.manual_seed(3)
    net = SmallCNN().eval()
    model = pa.models.from_module(net, mean=MEAN, std=STD, input_size=16, head="fc", name="ref")
    return net, model


def test_the_input_clamp_passes_the_gradient_at_the_bounds(small_cnn):
    """PyTorch 2.14's clamp gives 0 at the bounds; the model's input clamp must give 1."""
    _net, model = small_cnn
    x = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]).view(1, 1, 1, 5).requires_grad_(True)
    model.normalize(x).sum().backward()
    assert x.grad is not None
    per_pixel = (x.grad * STD[0]).flatten().tolist()
    assert per_pixel == pytest.approx([0.0, 1.0, 1.0, 1.0, 0.0])


def test_paper_preset_is_the_authors_loop_bit_for_bit(small_cnn):
    net, model = small_cnn
    digits = load_images("digits", 6, size=16, seed=2)
    targets = quantize(digits.images)
    steps = 50
    cfg = InversionConfig.from_preset(
        "paper", steps=steps, fold_batchnorm=False, record_every=1, batch_size=6
    )
    assert dataclasses.replace(cfg, steps=5000).preset == "paper"  # only the steps are fewer
    ours = invert(model, targets, seeds="super-noise", config=cfg)
    # the one raw seed the engine drew for every target (its documented random stream)
    seed = torch.randn((1, 16, 16), generator=stream("seed", 0, "super-noise", None, 0))
    assert seed.min() < 0 and seed.max() > 1  # raw: the model sees it through the clamp
    assert torch.equal(ours.seeds, quantize(seed).expand_as(targets))  # shown as saved
    best, losses = authors_loop(net, targets, seed, steps)
    assert torch.equal(ours.iris, quantize(best))
    assert ours.curve_steps == list(range(steps + 1))
    assert torch.equal(ours.curves, torch.stack(losses, dim=1))
    # the loop went somewhere: the representation distance fell by far
    assert (losses[-1] < 0.5 * losses[0]).all()


def test_the_authors_loop_needs_each_of_its_settings(small_cnn):
    """Each setting the paper preset fixes changes the iterates: none is decorative."""
    net, model = small_cnn
    targets = quantize(load_images("digits", 4, size=16, seed=2).images)
    seed = torch.randn((1, 16, 16), generator=stream("seed", 0, "super-noise", None, 0))
    best, _ = authors_loop(net, targets, seed, 20)
    base = dict(steps=20, fold_batchnorm=False, batch_size=4)
    for change in ({"fake_relu": False}, {"share_seeds": False}, {"clamp_seeds": True}):
        cfg = InversionConfig.from_preset("paper", **base, **change)
        assert cfg.preset is None  # a contradicting option leaves no preset name
        other = invert(model, targets, seeds="super-noise", config=cfg)
        assert not torch.equal(other.iris, quantize(best)), change


@pytest.mark.slow
def test_with_batchnorm_folding_the_paper_loop_reaches_the_same_distances():
    """Folding changes float rounding only: the distances' distribution stays the same."""
    model = pa.models.load("tiny-resnet")
    targets = quantize(to_channels(load_images("digits", 12, size=32, seed=4).images, 3))
    runs = {
        fold: invert(
            model,
            targets,
            seeds="super-noise",
            config=InversionConfig.from_preset("paper", steps=150, fold_batchnorm=fold),
        )
        for fold in (False, True)
    }
    plain, folded = (runs[f].distance.sort().values for f in (False, True))
    assert (runs[False].distance < 0.7 * runs[False].seed_distance).all()  # it optimized
    torch.testing.assert_close(folded, plain, rtol=0.05, atol=0.01)
