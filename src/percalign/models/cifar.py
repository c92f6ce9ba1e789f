"""The paper's CIFAR architectures as loadable models (``cifar-resnet18``...), random or from
a weights file such as a robustness-library CIFAR checkpoint.

Named ``cifar-*`` so that they cannot be confused with torchvision's ImageNet models of the
same base name: ``load("resnet18")`` is torchvision's 224 px ImageNet network,
``load("cifar-resnet18")`` the 32 px CIFAR one (3x3 stem, no max-pool).
"""

from __future__ import annotations

from percalign.models.archs import ARCHS, build_arch
from percalign.models.catalog import register
from percalign.models.spec import ModelSpec

__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "CIFAR_MODELS", "register_models"]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
#: The registered CIFAR-10 models (10 classes, 32 x 32 RGB).
CIFAR_MODELS = tuple(name for name in ARCHS if name.startswith("cifar-"))


def _factory(name: str):
    def build():
        net, head, pool = build_arch(name, 3, 10)
        return net, ModelSpec(
            name=name,
            source="cifar",
            input_size=(32, 32),
            in_chans=3,
            mean=CIFAR10_MEAN,
            std=CIFAR10_STD,
            num_classes=10,
            weights="none",
            head=head,
            token_pool=pool,
            # the authors' CIFAR VGG has no fake ReLU; their ResNet and DenseNet fake the last
            fake_relu_at="none" if name.startswith("cifar-vgg") else "last",
        )

    return build


def register_models() -> None:
    """Register the paper's CIFAR-10 architectures with the model registry (idempotent)."""
    for name in CIFAR_MODELS:
        register(name, f"paper's CIFAR-10 {name.removeprefix('cifar-')} (32 px; weights file)")(
            _factory(name)
        )
