"""The model zoo: trained checkpoints in ``$PERCALIGN_HOME/zoo``, loadable by name everywhere.

Layout: ``zoo/NAME/model.pt`` (state dict), ``zoo/NAME/meta.json`` (architecture, recipe,
hyperparameters, data, accuracies, timing), and ``zoo/NAME/epochs/EPOCH.pt`` for intermediate
checkpoints, which load as ``NAME@EPOCH``. A checkpoint folder appears only when complete.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from percalign import _paths
from percalign.errors import MissingFileError, unknown_name
from percalign.models.archs import build_arch
from percalign.models.checkpoints import Checkpoint, apply_state_dict, file_sha256
from percalign.models.model import ModelSpec
from percalign.models.registry import RANDOM_WEIGHTS, add_source
from percalign.store.runs import atomic_folder

__all__ = ["ZooSource", "install", "read_meta", "save_checkpoint", "zoo_dir"]

META = "meta.json"
WEIGHTS = "model.pt"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def zoo_dir() -> Path:
    return _paths.home() / "zoo"


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name)) and "@" not in name


def save_checkpoint(
    name: str,
    module: nn.Module,
    meta: dict[str, Any],
    epochs: dict[int, dict[str, torch.Tensor]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a zoo entry atomically; ``epochs`` holds intermediate state dicts by epoch."""
    target = zoo_dir() / name
    with atomic_folder(target, overwrite=overwrite) as tmp:
        torch.save(module.state_dict(), tmp / WEIGHTS)
        for epoch, state in (epochs or {}).items():
            (tmp / "epochs").mkdir(exist_ok=True)
            torch.save(state, tmp / "epochs" / f"{epoch}.pt")
        meta = {
            **meta,
            "name": name,
            "weights_sha256": file_sha256(tmp / WEIGHTS),
            "saved_epochs": sorted(epochs or {}),
        }
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
    return target


def read_meta(name: str) -> dict[str, Any]:
    base = name.split("@", 1)[0]
    path = zoo_dir() / base / META
    if not path.is_file():
        raise MissingFileError(
            f"No zoo model {base!r} in {zoo_dir()}; train it with "
            "`percalign train ... --name " + base + "`."
        )
    return json.loads(path.read_text())


class ZooSource:
    """Models trained with ``percalign train`` (and their intermediate epochs, ``NAME@EPOCH``)."""

    name = "zoo"

    def names(self) -> list[str]:
        root = zoo_dir()
        if not root.is_dir():
            return []
        found = []
        for meta in sorted(root.glob(f"*/{META}")):
            found.append(meta.parent.name)
            epochs = json.loads(meta.read_text()).get("saved_epochs", [])
            found.extend(f"{meta.parent.name}@{e}" for e in epochs)
        return found

    def owns(self, name: str) -> bool:
        return (zoo_dir() / name.split("@", 1)[0] / META).is_file()

    def build(self, name: str, weights: str | None) -> tuple[nn.Module, ModelSpec]:
        base, _, epoch = name.partition("@")
        meta = read_meta(base)
        net, head, pool = build_arch(
            meta["arch"], meta["in_chans"], meta["num_classes"], meta["width"], meta["image_size"]
        )
        if weights in RANDOM_WEIGHTS:
            label = "none"
        else:
            path = zoo_dir() / base / (f"epochs/{epoch}.pt" if epoch else WEIGHTS)
            if not path.is_file():
                raise unknown_name(
                    f"epoch of zoo model {base!r}",
                    epoch,
                    [str(e) for e in meta.get("saved_epochs", [])],
                )
            state = torch.load(path, map_location="cpu", weights_only=True)
            apply_state_dict(net, Checkpoint(state, "state_dict", path, ""), name)
            label = f"zoo:{name}"
        keep = (
            "recipe",
            "dataset",
            "epochs",
            "seed",
            "clean_accuracy",
            "robust_accuracy",
            "probe_accuracy",
            "train_seconds",
            "hyperparameters",
        )
        spec = ModelSpec(
            name=name,
            source="zoo",
            input_size=(meta["image_size"], meta["image_size"]),
            in_chans=meta["in_chans"],
            mean=tuple(meta["mean"]),
            std=tuple(meta["std"]),
            num_classes=meta["num_classes"],
            weights=label,
            head=head,
            token_pool=pool,
            extra={k: meta[k] for k in keep if k in meta},
        )
        return net, spec


def install() -> None:
    """Add the zoo to the model sources, before torchvision and timm (idempotent); run by the
    ``model-sources`` extension point (:mod:`percalign._plugins`)."""
    add_source(ZooSource(), first=True)
