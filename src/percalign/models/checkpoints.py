"""Reading weights files: plain state dicts, robustness-library checkpoints, URLs."""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from percalign import _paths
from percalign.errors import WeightsError, WeightsNotFoundError

__all__ = [
    "Checkpoint",
    "apply_state_dict",
    "file_sha256",
    "is_torchscript",
    "read_checkpoint",
    "resolve_location",
    "split_tag",
]

#: Prefix of the network's own weights in a robustness-library checkpoint.
_ROBUST_MODEL = "module.model."
#: Keys (after any prefix) of the input normalization some training libraries store with
#: the weights: the robustness library's ``normalizer.new_mean`` / ``new_std``.
_NORMALIZER = ("normalizer.new_mean", "normalizer.new_std")


@dataclass(frozen=True)
class Checkpoint:
    """Weights read from a file, with what the file said about normalization."""

    state_dict: dict[str, torch.Tensor]
    layout: str  # 'state_dict' or 'robustness'
    path: Path
    sha256: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def split_tag(weights: str) -> tuple[str | None, str]:
    """Split ``'robust_l2_eps3:/path/ckpt.pt'`` into a label and a location.

    A URL or a path without a label gives ``(None, location)``.
    """
    head, sep, tail = weights.partition(":")
    if sep and head and "/" not in head and "." not in head and not tail.startswith("//"):
        return head, tail
    return None, weights


def resolve_location(location: str) -> Path:
    """Turn a local path or a URL into a local file, downloading into the cache if allowed."""
    if urlparse(location).scheme in {"http", "https"}:
        target = _paths.weights_cache() / Path(urlparse(location).path).name
        if target.is_file():
            return target
        hint = f"Download {location} and save it as {target}, or pass the local path."
        if _paths.offline():
            raise WeightsNotFoundError(f"Weights {target.name} are not cached (offline). {hint}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(location, str(target), progress=False)
        except Exception as exc:  # any network failure means the same thing to the user
            raise WeightsNotFoundError(f"Could not download weights ({exc}). {hint}") from exc
        return target
    path = Path(location).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"Weights file {str(path)!r} does not exist; pass an existing file."
        )
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_torchscript(path: Path) -> bool:
    """True if ``path`` is a TorchScript archive (as written by ``torch.jit.save``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())


def _load_object(path: Path, allow_pickle: bool) -> object:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path} holds pickled Python objects besides tensors; re-save it as a plain "
            "state_dict, or pass allow_pickle=True (--allow-pickle) if you trust its source."
        ) from exc
    except Exception as exc:
        raise WeightsError(f"Could not read weights from {path}: {exc}") from exc


def _tensors(obj: object) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    return None


def _stored_normalization(sd: dict[str, torch.Tensor]) -> tuple[tuple[float, ...] | None, ...]:
    """The (mean, std) a checkpoint stores with its weights, if any (robustness-style)."""
    found: list[tuple[float, ...] | None] = []
    for suffix in _NORMALIZER:
        key = min((k for k in sd if k.endswith(suffix)), key=len, default=None)
        found.append(None if key is None else tuple(sd[key].flatten().tolist()))
    return tuple(found)


def read_checkpoint(path: Path, allow_pickle: bool = False) -> Checkpoint:
    """Read a weights file in any supported layout.

    Layouts: a plain state dict; a dict holding one under ``'model'`` or ``'state_dict'``
    (PyTorch Lightning checkpoints, the paper's authors' training library among them); and
    any of these with the network's weights under a prefix (``module.`` of DataParallel,
    ``model.`` of a Lightning module, ``module.model.`` of the robustness library, next to
    its ``module.normalizer.*``, whose mean/std are used, and ``module.attacker.*``). The
    prefix is found when the weights are applied to a network (:func:`apply_state_dict`).
    """
    obj = _load_object(path, allow_pickle)
    sd = _tensors(obj)
    if sd is None and isinstance(obj, dict):
        for key in ("model", "state_dict"):
            sd = _tensors(obj.get(key))
            if sd is not None:
                break
    if sd is None:
        raise WeightsError(
            f"{path} holds no state dict (a mapping of names to tensors, directly or under "
            "'model' or 'state_dict'); save one with torch.save(model.state_dict(), path)."
        )
    mean, std = _stored_normalization(sd)
    if any(k.startswith(_ROBUST_MODEL) for k in sd):
        layout = "robustness"
    elif isinstance(obj, dict) and any("lightning" in str(k) for k in obj):
        layout = "lightning"
    else:
        layout = "state_dict"
    return Checkpoint(sd, layout, path, file_sha256(path), mean=mean, std=std)


#: Module names of the robustness library's CIFAR networks -> ours (``cifar-resnet18``:
#: ``shortcut`` is ``downsample``, ``linear`` is ``fc``; ``cifar-vgg*``: the classifier is the
#: first module of ``classifier``). Tried only when the names do not fit as they are.
_ROBUST_CIFAR_RENAMES = (
    ((".shortcut.", ".downsample."), ("linear.", "fc.")),
    (("classifier.", "classifier.0."),),
)


def _fits(own: dict[str, torch.Tensor], sd: dict[str, torch.Tensor]) -> bool:
    needed = {k for k in own if not k.endswith("num_batches_tracked")}
    return needed <= sd.keys() <= own.keys() and all(own[k].shape == sd[k].shape for k in sd)


def _renamed(sd: dict[str, torch.Tensor], renames: tuple) -> dict[str, torch.Tensor]:
    """``sd`` with one rename set of :data:`_ROBUST_CIFAR_RENAMES` applied."""
    renamed = {}
    for key, value in sd.items():
        for old, new in renames:
            if key.startswith(old) or (old.startswith(".") and old in key):
                key = key.replace(old, new, 1)
        renamed[key] = value
    return renamed


def _prefixes(sd: dict[str, torch.Tensor]) -> list[str]:
    """Every prefix of up to three dotted parts the keys have, shortest first ('' first)."""
    found = {""}
    for key in sd:
        parts = key.split(".")[:-1]
        found.update(".".join(parts[:n]) + "." for n in range(1, min(3, len(parts)) + 1))
    return sorted(found, key=lambda p: (p.count("."), p))


def _candidates(sd: dict[str, torch.Tensor]):
    """The state dicts ``sd`` may hold for a network: under each prefix, renamed or not."""
    for prefix in _prefixes(sd):
        under = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        yield under
        for renames in _ROBUST_CIFAR_RENAMES:
            yield _renamed(under, renames)


def apply_state_dict(module: nn.Module, ckpt: Checkpoint, model_name: str) -> None:
    """Load ``ckpt`` into ``module``; a checkpoint that fits in no way raises one line.

    The weights fit when, under one key prefix (none, ``module.``, ``model.``,
    ``module.model.``...), they are exactly the network's, with the robustness library's CIFAR
    module names (:data:`_ROBUST_CIFAR_RENAMES`) or without; only BatchNorm's
    ``num_batches_tracked`` counters may be absent (old checkpoints). Otherwise the
    :class:`WeightsError` names the first missing and unexpected keys of the closest fit.
    """
    own = module.state_dict()
    fits = next((c for c in _candidates(ckpt.state_dict) if _fits(own, c)), None)
    if fits is None:
        closest = max(_candidates(ckpt.state_dict), key=lambda c: len(own.keys() & c.keys()))
        problems = {
            "missing": [
                k for k in own if k not in closest and not k.endswith("num_batches_tracked")
            ],
            "unexpected": [k for k in closest if k not in own],
            "of the wrong shape": [
                k for k in closest if k in own and own[k].shape != closest[k].shape
            ],
        }
        found = [
            f"{len(keys)} {label} (first {keys[0]!r})" for label, keys in problems.items() if keys
        ]
        raise WeightsError(
            f"Weights in {ckpt.path} ({ckpt.layout} layout) do not fit model {model_name!r}: "
            f"{', '.join(found)}. Check that the architecture name matches the checkpoint."
        )
    module.load_state_dict(fits, strict=False)
