"""Architectures for training on small images (CIFAR-style stems), with a width knob.

Each keeps the module names of its ImageNet relative where it has one (``layer1``..``layer4``,
``features``, ``classifier``, ``blocks``), ends with global pooling and one linear classifier
(``fc`` or ``head``) whose input is the penultimate representation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from percalign.errors import unknown_name

__all__ = ["ARCHS", "ARCH_ALIASES", "arch_name", "build_arch"]


class SmallCNN(nn.Module):
    """Five 3x3 convs in three stages (w, w / 2w, 2w / 4w), global pooling, 4w-d penultimate."""

    def __init__(self, in_chans: int, num_classes: int, width: int = 32) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        w = width
        self.stage1 = nn.Sequential(*conv(in_chans, w), *conv(w, w), nn.MaxPool2d(2))
        self.stage2 = nn.Sequential(*conv(w, 2 * w), *conv(2 * w, 2 * w), nn.MaxPool2d(2))
        self.stage3 = nn.Sequential(*conv(2 * w, 4 * w))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stage3(self.stage2(self.stage1(x))))
        return self.fc(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """A residual block that, like torchvision's, calls one ReLU module twice."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3x3 stem without max-pool, four stages of two basic blocks."""

    def __init__(self, in_chans: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(in_chans, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)

        def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))

        self.layer1 = stage(w, w, 1)
        self.layer2 = stage(w, 2 * w, 2)
        self.layer3 = stage(2 * w, 4 * w, 2)
        self.layer4 = stage(4 * w, 8 * w, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


_VGG_CFG: dict[str, list[int | str]] = {
    "vgg11": [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    "vgg16": [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
}


class VGG(nn.Module):
    """CIFAR VGG with BatchNorm; channel multiples of ``width`` (64 gives the usual 64..512)."""

    def __init__(self, cfg: str, in_chans: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for item in _VGG_CFG[cfg]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                cout = int(item) * width
                layers += [
                    nn.Conv2d(cin, cout, 3, padding=1),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True),
                ]
                cin = cout
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.norm2(self.conv1(self.relu(self.norm1(x))))))
        return torch.cat([x, out], 1)


class DenseNet(nn.Module):
    """DenseNet-121-style (blocks of 6, 12, 24, 16 bottleneck layers) for small images.

    ``width`` is the growth rate (32 in DenseNet-121); transitions halve the channels.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        width: int = 32,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
    ) -> None:
        super().__init__()
        growth = width
        c = 2 * growth
        feats: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv2d(in_chans, c, 3, padding=1, bias=False))
        ]
        for i, n in enumerate(blocks):
            layers = []
            for _ in range(n):
                layers.append(_DenseLayer(c, growth))
                c += growth
            feats.append((f"denseblock{i + 1}", nn.Sequential(*layers)))
            if i < len(blocks) - 1:
                feats.append(
                    (
                        f"transition{i + 1}",
                        nn.Sequential(
                            nn.BatchNorm2d(c),
                            nn.ReLU(),
                            nn.Conv2d(c, c // 2, 1, bias=False),
                            nn.AvgPool2d(2),
                        ),
                    )
                )
                c //= 2
        feats.append(("norm5", nn.BatchNorm2d(c)))
        feats.append(("relu5", nn.ReLU()))
        self.features = nn.Sequential()
        for name, module in feats:
            self.features.add_module(name, module)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = mlp_ratio * dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class SmallViT(nn.Module):
    """Vision transformer for small images: 4x4 patches, class token, ``depth`` blocks."""

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        width: int = 64,
        image_size: int = 32,
        patch: int = 4,
        depth: int = 6,
        heads: int = 4,
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(in_chans, width, patch, stride=patch)
        tokens = (image_size // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        self.blocks = nn.Sequential(*[_Block(width, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


#: name -> (factory(in_chans, num_classes, width, image_size), default width, head, token pool).
#: The paper's CIFAR architectures are prefixed ``cifar-`` so that they are never mistaken for
#: torchvision's ImageNet models of the same name (``load("resnet18")`` is torchvision's).
ARCHS: dict[str, tuple[Callable[..., nn.Module], int, str, str]] = {
    "small-cnn": (lambda c, k, w, s: SmallCNN(c, k, w), 32, "fc", "all"),
    "cifar-resnet18": (lambda c, k, w, s: ResNet18(c, k, w), 64, "fc", "all"),
    "cifar-vgg11": (lambda c, k, w, s: VGG("vgg11", c, k, w), 64, "classifier.0", "all"),
    "cifar-vgg16": (lambda c, k, w, s: VGG("vgg16", c, k, w), 64, "classifier.0", "all"),
    "cifar-densenet121": (lambda c, k, w, s: DenseNet(c, k, w), 32, "classifier", "all"),
    "small-vit": (lambda c, k, w, s: SmallViT(c, k, w, image_size=s), 64, "head", "cls"),
}
#: Names used before the ``cifar-`` prefix; still accepted for training and for old zoo models.
ARCH_ALIASES = {
    "resnet18": "cifar-resnet18",
    "vgg11": "cifar-vgg11",
    "vgg16": "cifar-vgg16",
    "densenet121": "cifar-densenet121",
}


def arch_name(name: str) -> str:
    """The current name of architecture ``name`` (old names map to ``cifar-*``)."""
    name = ARCH_ALIASES.get(name, name)
    if name not in ARCHS:
        raise unknown_name("architecture", name, ARCHS)
    return name


def build_arch(
    name: str, in_chans: int, num_classes: int, width: int | None = None, image_size: int = 32
) -> tuple[nn.Module, str, str]:
    """The network, the path of its classifier head, and its token pooling."""
    factory, default_width, head, pool = ARCHS[arch_name(name)]
    return factory(in_chans, num_classes, width or default_width, image_size), head, pool
