"""Model sources backed by torchvision and timm, loaded lazily and offline-safe."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import torch
from torch import nn

from percalign import _paths
from percalign.errors import ConfigError, WeightsNotFoundError, unknown_name
from percalign.models.catalog import RANDOM_WEIGHTS, add_source, find_head
from percalign.models.spec import ModelSpec

__all__ = ["TimmSource", "TorchvisionSource", "hf_cache", "install"]

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
            fake_relu_at=resnet_fake_relu(module),
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
        module = _timm_pretrained(name) if pretrained else timm.create_model(name)
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
            fake_relu_at=resnet_fake_relu(module),
        )


def resnet_fake_relu(module: nn.Module) -> str:
    """``blocks:layer4`` for a torchvision or timm ResNet (every layer4 block's final ReLU is
    made fake, as the paper's authors do for ImageNet ResNets); ``last`` for any other."""
    stage = getattr(module, "layer4", None)
    is_resnet = type(module).__name__ == "ResNet" and isinstance(stage, nn.Sequential)
    return "blocks:layer4" if is_resnet else "last"


def hf_cache() -> Path:
    """The Hugging Face hub cache, read from the environment now (as huggingface_hub lays it
    out: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "huggingface" / "hub"


def _timm_cached_file(cfg: dict) -> tuple[Path | None, str]:
    """Where the weights of a timm pretrained cfg are cached, and where they would be."""
    from huggingface_hub import try_to_load_from_cache

    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        repo, _, revision = hub_id.partition("@")
        names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else []
        names = names or ["model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors"]
        for filename in names:
            found = try_to_load_from_cache(
                repo, filename, cache_dir=hf_cache(), revision=revision or None
            )
            if isinstance(found, str):
                return Path(found), found
        folder = hf_cache() / f"models--{repo.replace('/', '--')}"
        return None, f"{folder}/snapshots/<commit>/{names[0]} (with refs/{revision or 'main'})"
    if cfg.get("url"):
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg["url"]).name
        return (cached if cached.is_file() else None), str(cached)
    return None, "nowhere: timm knows no source for these weights"


def _timm_pretrained(name: str) -> nn.Module:
    """A timm model with its pretrained weights: from the caches when there, else downloaded.

    Offline, weights missing from the caches fail at once (timm would ask the hub and retry
    with backoff for about 30 s, whatever ``HF_HUB_OFFLINE`` says after import).
    """
    import timm
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError as exc:  # a tag the architecture does not have
        arch = name.split(".", 1)[0]
        tags = timm.list_pretrained(f"{arch}.*")
        raise unknown_name(
            "pretrained tag", name, tags, where="of timm", hint="(or pass weights='none')"
        ) from exc
    if cfg is None:
        raise WeightsNotFoundError(
            f"timm model {name!r} has no pretrained weights; pass weights='none' or a file."
        )
    path, where = _timm_cached_file(cfg.to_dict())
    if path is not None:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    if _paths.offline():
        raise WeightsNotFoundError(
            f"Pretrained timm weights for {name!r} are not in the Hugging Face cache (offline); "
            f"put them at {where} "
            "(huggingface_hub's layout: `hf download` fills it), or pass a weights file or "
            "weights='none'."
        )
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as exc:
        raise WeightsNotFoundError(
            f"Could not download pretrained timm weights for {name!r} "
            f"({type(exc).__name__}); put them at {where}, or pass a weights file or "
            "weights='none'."
        ) from exc


def _out_features(module: nn.Module, head: str | None) -> int | None:
    if head is None:
        return None
    layer = dict(module.named_modules())[head]
    return int(layer.out_features) if isinstance(layer, nn.Linear) else None


def install() -> None:
    """Add the torchvision and timm sources to the model registry (idempotent)."""
    add_source(TorchvisionSource())
    add_source(TimmSource())
