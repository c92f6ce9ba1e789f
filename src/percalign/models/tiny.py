"""Tiny networks of the main families (a few thousand parameters), for tests and demos.

Each mirrors the module naming of its full-size relative, so code written against
``layer4`` or ``features.28`` can be tested on ``layer2`` or ``features.3`` in milliseconds.
"""

from __future__ import annotations

import torch
from torch import nn

from percalign.models.archs import BasicBlock, SmallViT
from percalign.models.catalog import register
from percalign.models.spec import ModelSpec

__all__ = ["MODELS", "TinyCNN", "TinyResNet", "TinyVGG", "TinyViT", "register_models"]

_MEAN = (0.5, 0.5, 0.5)
_STD = (0.25, 0.25, 0.25)


def _spec(name: str, head: str, token_pool: str = "all") -> ModelSpec:
    return ModelSpec(
        name=name,
        source="tiny",
        input_size=(32, 32),
        in_chans=3,
        mean=_MEAN,
        std=_STD,
        num_classes=10,
        weights="none",
        head=head,
        token_pool=token_pool,
    )


class TinyCNN(nn.Module):
    """Three conv blocks, global average pooling, a linear classifier."""

    def __init__(self, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.block3(self.block2(self.block1(x))))
        return self.fc(torch.flatten(x, 1))


class TinyResNet(nn.Module):
    """Stem, two residual stages (``layer1``, ``layer2``), ``avgpool``, ``fc``."""

    def __init__(self, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TinyVGG(nn.Module):
    """``features`` (conv/ReLU/max-pool), ``avgpool``, ``classifier`` with a hidden layer."""

    def __init__(self, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(
            nn.Linear(64, 32), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(32, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def TinyViT() -> SmallViT:
    """Patch embedding (8x8 patches), a class token, two ``blocks``, ``norm``, ``head``."""
    return SmallViT(3, 10, width=16, image_size=32, patch=8, depth=2, heads=2, mlp_ratio=2)


def _tiny_cnn() -> tuple[nn.Module, ModelSpec]:
    return TinyCNN(), _spec("tiny-cnn", head="fc")


def _tiny_resnet() -> tuple[nn.Module, ModelSpec]:
    return TinyResNet(), _spec("tiny-resnet", head="fc")


def _tiny_vgg() -> tuple[nn.Module, ModelSpec]:
    return TinyVGG(), _spec("tiny-vgg", head="classifier.3")


def _tiny_vit() -> tuple[nn.Module, ModelSpec]:
    return TinyViT(), _spec("tiny-vit", head="head", token_pool="cls")


#: name -> (summary, factory); registered by :func:`register_models`
MODELS = {
    "tiny-cnn": ("3-conv CNN, 6k parameters, 32x32 (tests, demos)", _tiny_cnn),
    "tiny-resnet": ("2-stage ResNet with BatchNorm, 5k parameters, 32x32 (tests)", _tiny_resnet),
    "tiny-vgg": (
        "VGG-style features + 2-layer classifier, 4k parameters, 32x32 (tests)",
        _tiny_vgg,
    ),
    "tiny-vit": (
        "2-block vision transformer, 8x8 patches, 7k parameters, 32x32 (tests)",
        _tiny_vit,
    ),
}


def register_models() -> None:
    """Register the tiny test models with the model registry (idempotent)."""
    for name, (summary, factory) in MODELS.items():
        register(name, summary)(factory)
