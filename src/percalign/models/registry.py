"""One entry point, :func:`load`, over every place a model can come from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from percalign import _plugins
from percalign.errors import ConfigError, unknown_name
from percalign.models import cifar, hub, tiny
from percalign.models.catalog import (
    _REGISTERED,
    _SOURCES,
    RANDOM_WEIGHTS,
    Source,
    add_source,
    find_head,
    register,
)
from percalign.models.checkpoints import (
    apply_state_dict,
    file_sha256,
    is_torchscript,
    read_checkpoint,
    resolve_location,
    split_tag,
)
from percalign.models.model import Model, ModelSpec

__all__ = [
    "RANDOM_WEIGHTS",
    "Source",
    "add_source",
    "find_head",
    "from_module",
    "list_models",
    "load",
    "register",
    "sources",
]

_WEIGHT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar", ".safetensors"}
_BOOTSTRAPPED = False


def sources() -> list[Source]:
    """The model sources, in the order :func:`load` asks them.

    On first use this registers percalign's own models (tiny, CIFAR), adds the torchvision
    and timm sources, and runs the providers of the ``model-sources`` extension point (the
    trained zoo; see :mod:`percalign._plugins`). Importing a module registers nothing.
    """
    global _BOOTSTRAPPED
    if not _BOOTSTRAPPED:
        tiny.register_models()
        cifar.register_models()
        hub.install()
        _plugins.run("model-sources")
        _BOOTSTRAPPED = True
    return list(_SOURCES)


def registered_summaries() -> dict[str, str]:
    sources()
    return {n: e.summary for n, e in sorted(_REGISTERED.entries.items())}


def list_models(all_sources: bool = False) -> list[str]:
    """Names of registered models; with ``all_sources``, every torchvision and timm name too."""
    found = []
    for source in sources():
        if all_sources or source is _REGISTERED or source.name == "zoo":
            found.extend(source.names())
    return found


def _is_location(weights: str) -> bool:
    tag, location = split_tag(weights)
    return (
        tag is not None
        or "/" in location
        or Path(location).suffix in _WEIGHT_SUFFIXES
        or Path(location).is_file()
    )


def _with_checkpoint(
    module: nn.Module, spec: ModelSpec, weights: str, allow_pickle: bool
) -> ModelSpec:
    tag, location = split_tag(weights)
    ckpt = read_checkpoint(resolve_location(location), allow_pickle=allow_pickle)
    apply_state_dict(module, ckpt, spec.name)
    label = f"{tag}:{ckpt.path}" if tag else str(ckpt.path)
    return replace(
        spec,
        weights=label,
        mean=ckpt.mean or spec.mean,
        std=ckpt.std or spec.std,
        extra={**spec.extra, "checkpoint_layout": ckpt.layout, "checkpoint_sha256": ckpt.sha256},
    )


def _torchscript(
    path: Path,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    input_size: int | tuple[int, int] | None,
) -> Model:
    if mean is None or std is None or input_size is None:
        raise ConfigError(
            f"{path} is a TorchScript model, which does not record its preprocessing; pass "
            "mean=, std= and input_size= (CLI: --mean, --std, --image-size)."
        )
    module = torch.jit.load(str(path), map_location="cpu")
    spec = ModelSpec(
        name=str(path),
        source="torchscript",
        input_size=(0, 0),
        in_chans=len(mean),
        mean=tuple(mean),
        std=tuple(std),
        weights=f"{path} (sha256 {file_sha256(path)[:12]})",
        hookable=False,
    ).with_input_size(input_size)
    return Model(module, spec)


def from_module(
    module: nn.Module,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    input_size: int | tuple[int, int],
    name: str = "module",
    head: str | None = "auto",
    num_classes: int | None = None,
) -> Model:
    """Wrap any ``nn.Module`` that takes normalized images.

    Args:
        module: the network; it is put in eval mode and its parameters are frozen.
        mean, std: the per-channel normalization it expects on [0, 1] pixels.
        input_size: (H, W), or an int for square inputs.
        name: how it appears in manifests and reports.
        head: module path of the classifier (its input is the 'penultimate' layer);
            ``"auto"`` picks the last ``nn.Linear``; None for no head.
        num_classes: size of the output, if known.
    """
    if len(mean) != len(std):
        raise ConfigError(f"mean and std must have one value per channel; got {mean} and {std}.")
    spec = ModelSpec(
        name=name,
        source="module",
        input_size=(0, 0),
        in_chans=len(mean),
        mean=tuple(mean),
        std=tuple(std),
        num_classes=num_classes,
        weights="given",
        head=find_head(module) if head == "auto" else head,
    ).with_input_size(input_size)
    return Model(module, spec)


def _split_prefix(name: str) -> tuple[str | None, str]:
    prefix, sep, rest = name.partition(":")
    if sep and prefix in {"torchvision", "tv", "timm", "zoo"}:
        return ("torchvision" if prefix == "tv" else prefix), rest
    return None, name


def load(
    name: str,
    weights: str | None = None,
    *,
    image_size: int | tuple[int, int] | None = None,
    seed: int = 0,
    allow_pickle: bool = False,
    device: torch.device | str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Model:
    """Load a model by name.

    Args:
        name: a registered name (``tiny-cnn``, a zoo model), a torchvision classification
            model (``resnet50``), a timm model (``timm:convnext_tiny.fb_in1k``; bare names
            are tried on torchvision first), or the path of a TorchScript file.
        weights: None for the model's default (pretrained for torchvision and timm; random for
            registered architectures), ``"none"`` for random initialization, a torchvision
            weights enum name (``IMAGENET1K_V2``), or a weights file: a path or URL, optionally
            labelled (``"robust_l2_eps3:/ckpt/resnet50_l2_eps3.ckpt"``); robustness-library
            checkpoints are recognised and their mean/std used.
        image_size: input size to use instead of the model's own (int or (H, W)).
        seed: seed of the random initialization, so random-weight models are reproducible.
        allow_pickle: let weights files hold arbitrary pickled objects (only if trusted).
        device: where to put the model (default CPU).
        mean, std: normalization, for TorchScript files (which do not record it).

    Raises:
        UnknownNameError: no source knows ``name`` (close matches are named).
        WeightsNotFoundError: pretrained weights are neither cached nor downloadable.
        WeightsError: a weights file does not fit the architecture.

    Example:
        >>> import percalign as pa
        >>> pa.models.load("tiny-resnet").spec.head
        'fc'
    """
    path = Path(name).expanduser()
    if path.suffix and path.is_file() and is_torchscript(path):
        model = _torchscript(path, mean, std, image_size)
        return model.to(device) if device is not None else model

    prefix, bare = _split_prefix(name)
    candidates = [s for s in sources() if prefix is None or s.name == prefix]
    source = next((s for s in candidates if s.owns(bare)), None)
    if source is None:
        choices = [
            n
            for s in sources()
            if s.name in {"registered", "zoo", "torchvision"}
            for n in s.names()
        ]
        raise unknown_name(
            "model",
            name,
            choices,
            hint="timm models work too, as 'timm:NAME'; see `percalign models list --all`.",
        )
    file_weights = weights is not None and weights not in RANDOM_WEIGHTS and _is_location(weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module, spec = source.build(bare, "none" if file_weights else weights)
    if file_weights:
        spec = _with_checkpoint(module, spec, str(weights), allow_pickle)
    elif spec.weights in RANDOM_WEIGHTS:
        spec = replace(spec, weights=f"none (random init, seed {seed})")
    if mean is not None or std is not None:
        spec = replace(spec, mean=tuple(mean or spec.mean), std=tuple(std or spec.std))
    model = Model(module, spec.with_input_size(image_size))
    return model.to(device) if device is not None else model
