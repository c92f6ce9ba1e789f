"""Model sources backed by torchvision and timm, loaded lazily and offline-safe."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import torch
from torch import nn

from percalign import _paths
from percalign.errors import ConfigError, WeightsNotFoundError, unknown_name
from percalign.models.model import ModelSpec
from percalign.models.registry import RANDOM_WEIGHTS, add_source, find_head

__all__ = ["TimmSource", "TorchvisionSource", "install"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TorchvisionSource:
    """torchvision classification models: ``resnet50``, ``vgg16_bn``, ``vit_b_16``..."""

    name = "torchvision"

    @cache  # noqa: B019 (one instance per process)
    def names(self) -> list[str]:
        import torchvision

        return sorted(torchvision.models.list_models(module=torchvision.models))

    def owns(self, name: str) -> bool:
        return name in self.names()

    def _weights_enum(self, name: str, weights: str):
        import torchvision

        enum = torchvision.models.get_model_weights(name)
        key = "DEFAULT" if weights in ("DEFAULT", "default") else weights
        try:
            return enum[key] if key != "DEFAULT" else enum.DEFAULT
        except KeyError:
            raise unknown_name(
                "weights",
                weights,
                where=f"for torchvision model {name!r}",
                choices=[w.name for w in enum] + ["none", "DEFAULT"],
            ) from None

    def build(self, name: str, weights: str | None) -> tuple[nn.Module, ModelSpec]:
        import torchvision

        size = 299 if name.startswith("inception") else 224
        if weights in RANDOM_WEIGHTS:
            kwargs = {"init_weights": False} if name in {"inception_v3", "googlenet"} else {}
            module = torchvision.models.get_model(name, weights=None, **kwargs)
            mean, std, label = IMAGENET_MEAN, IMAGENET_STD, "none"
        else:
            enum = self._weights_enum(name, weights or "DEFAULT")
            cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
            if not cached.is_file() and _paths.offline():
                raise WeightsNotFoundError(
                    f"torchvision weights {name}.{enum.name} are not cached (offline); put "
                    f"{Path(enum.url).name} into {cached.parent} (TORCH_HOME) or pass "
                    "weights='none'."
                )
            try:
                module = torchvision.models.get_model(name, weights=enum)
            except Exception as exc:
                raise WeightsNotFoundError(
                    f"Could not get torchvision weights {name}.{enum.name} ({exc}); download "
                    f"{enum.url} into {cached.parent}, or pass weights='none'."
                ) from exc
            preprocess = enum.transforms()
            mean, std = tuple(preprocess.mean), tuple(preprocess.std)
            size = int(preprocess.crop_size[0])
            label = f"{enum.name} ({Path(enum.url).name})"
        head = find_head(module)
        return module, ModelSpec(
            name=name,
            source="torchvision",
            input_size=(size, size),
            in_chans=3,
            mean=mean,
            std=std,
            num_classes=_out_features(module, head),
            weights=label,
            head=head,
            token_pool="cls" if name.startswith("vit") else "all",
        )


class TimmSource:
    """timm models, with pretrained tags: ``resnet50.a1_in1k``, ``test_vit``..."""

    name = "timm"

    @cache  # noqa: B019
    def names(self) -> list[str]:
        import timm

        return sorted(timm.list_models())

    def owns(self, name: str) -> bool:
        import timm

        return timm.is_model(name.split(".", 1)[0])

    def build(self, name: str, weights: str | None) -> tuple[nn.Module, ModelSpec]:
        import timm
        import timm.data

        pretrained = weights not in RANDOM_WEIGHTS
        if weights not in (None, *RANDOM_WEIGHTS):
            raise ConfigError(
                f"timm weights are chosen by a tag in the name ('{name}.TAG'), or are a file; "
                f"got weights={weights!r}."
            )
        previous = os.environ.get("HF_HUB_OFFLINE")
        if _paths.offline():
            os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            module = timm.create_model(name, pretrained=pretrained)
        except Exception as exc:
            if not pretrained:
                raise
            raise WeightsNotFoundError(
                f"Pretrained timm weights for {name!r} are not in the Hugging Face cache "
                f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and could not be "
                f"downloaded ({type(exc).__name__}); fill the cache or pass a weights file."
            ) from exc
        finally:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous
        cfg = timm.data.resolve_data_config({}, model=module)
        get_classifier = getattr(module, "get_classifier", None)
        classifier = get_classifier() if callable(get_classifier) else None
        head = next((p for p, m in module.named_modules() if m is classifier), None)
        if isinstance(classifier, nn.Identity):
            head = None
        pool = getattr(module, "global_pool", None)
        token_pool = {"token": "cls", "avg": "mean"}.get(
            pool if isinstance(pool, str) else "", "all"
        )
        _, h, w = cfg["input_size"]
        return module, ModelSpec(
            name=name,
            source="timm",
            input_size=(h, w),
            in_chans=cfg["input_size"][0],
            mean=tuple(cfg["mean"]),
            std=tuple(cfg["std"]),
            num_classes=getattr(module, "num_classes", None) or None,
            weights=(
                f"pretrained ({getattr(module, 'pretrained_cfg', {}).get('tag', 'default')})"
                if pretrained
                else "none"
            ),
            head=head,
            token_pool=token_pool,
        )


def _out_features(module: nn.Module, head: str | None) -> int | None:
    if head is None:
        return None
    layer = dict(module.named_modules())[head]
    return int(layer.out_features) if isinstance(layer, nn.Linear) else None


def install() -> None:
    """Add the torchvision and timm sources to the model registry (idempotent)."""
    add_source(TorchvisionSource())
    add_source(TimmSource())
