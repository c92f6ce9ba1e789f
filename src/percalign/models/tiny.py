"""Tiny networks of the main families (a few thousand parameters), for tests and demos.

Each mirrors the module naming of its full-size relative, so code written against
``layer4`` or ``features.28`` can be tested on ``layer2`` or ``features.3`` in milliseconds.
"""

from __future__ import annotations

import torch
from torch import nn

from percalign.models.model import ModelSpec
from percalign.models.registry import register

__all__ = ["TinyCNN", "TinyResNet", "TinyVGG", "TinyViT"]

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


class _BasicBlock(nn.Module):
    """A residual block that, like torchvision's, calls one ReLU module twice."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class TinyResNet(nn.Module):
    """Stem, two residual stages (``layer1``, ``layer2``), ``avgpool``, ``fc``."""

    def __init__(self, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(_BasicBlock(8, 8))
        self.layer2 = nn.Sequential(_BasicBlock(8, 16, stride=2))
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


class _ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """Patch embedding (8x8 patches), a class token, two ``blocks``, ``norm``, ``head``."""

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 10,
        image_size: int = 32,
        patch: int = 8,
        dim: int = 16,
        depth: int = 2,
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(in_chans, dim, patch, stride=patch)
        tokens = (image_size // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[_ViTBlock(dim, 2, 2 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


@register("tiny-cnn", "3-conv CNN, 6k parameters, 32x32 (tests, demos)")
def _tiny_cnn() -> tuple[nn.Module, ModelSpec]:
    return TinyCNN(), _spec("tiny-cnn", head="fc")


@register("tiny-resnet", "2-stage ResNet with BatchNorm, 5k parameters, 32x32 (tests)")
def _tiny_resnet() -> tuple[nn.Module, ModelSpec]:
    return TinyResNet(), _spec("tiny-resnet", head="fc")


@register("tiny-vgg", "VGG-style features + 2-layer classifier, 4k parameters, 32x32 (tests)")
def _tiny_vgg() -> tuple[nn.Module, ModelSpec]:
    return TinyVGG(), _spec("tiny-vgg", head="classifier.3")


@register("tiny-vit", "2-block vision transformer, 8x8 patches, 7k parameters, 32x32 (tests)")
def _tiny_vit() -> tuple[nn.Module, ModelSpec]:
    return TinyViT(), _spec("tiny-vit", head="head", token_pool="cls")
