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
#: Entries of a robustness-library checkpoint that are not the network's weights.
_ROBUST_IGNORED = ("module.attacker.", "module.normalizer.")


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


def read_checkpoint(path: Path, allow_pickle: bool = False) -> Checkpoint:
    """Read a weights file in any supported layout.

    Layouts: a plain state dict; a dict holding one under ``'model'`` or ``'state_dict'``;
    keys prefixed ``module.`` (DataParallel); and robustness-library checkpoints, whose network
    weights are under ``module.model.`` next to ``module.normalizer.*`` (its mean/std, used)
    and ``module.attacker.*`` (a copy for the attacker, ignored).
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
    sha = file_sha256(path)
    if any(k.startswith(_ROBUST_MODEL) for k in sd):
        mean = sd.get("module.normalizer.new_mean")
        std = sd.get("module.normalizer.new_std")
        weights = {k[len(_ROBUST_MODEL) :]: v for k, v in sd.items() if k.startswith(_ROBUST_MODEL)}
        return Checkpoint(
            weights,
            "robustness",
            path,
            sha,
            mean=tuple(mean.flatten().tolist()) if mean is not None else None,
            std=tuple(std.flatten().tolist()) if std is not None else None,
        )
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if not k.startswith(_ROBUST_IGNORED)}
    return Checkpoint(sd, "state_dict", path, sha)


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


def _robustness_cifar_renames(sd: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """``sd`` with each rename set of :data:`_ROBUST_CIFAR_RENAMES` applied."""
    out = []
    for renames in _ROBUST_CIFAR_RENAMES:
        renamed = {}
        for key, value in sd.items():
            for old, new in renames:
                if key.startswith(old) or (old.startswith(".") and old in key):
                    key = key.replace(old, new, 1)
            renamed[key] = value
        out.append(renamed)
    return out


def apply_state_dict(module: nn.Module, ckpt: Checkpoint, model_name: str) -> None:
    """Load ``ckpt`` into ``module``; any mismatch raises :class:`WeightsError` naming it.

    Only BatchNorm's ``num_batches_tracked`` counters may be absent (old checkpoints).
    Robustness-library CIFAR checkpoints whose module names differ from ours
    (:data:`_ROBUST_CIFAR_RENAMES`) are renamed when that makes them fit exactly.
    """
    own = module.state_dict()
    sd = ckpt.state_dict
    if ckpt.layout == "robustness" and not _fits(own, sd):
        sd = next((r for r in _robustness_cifar_renames(sd) if _fits(own, r)), sd)
    problems = {
        "missing": [k for k in own if k not in sd and not k.endswith("num_batches_tracked")],
        "unexpected": [k for k in sd if k not in own],
        "of the wrong shape": [k for k in sd if k in own and own[k].shape != sd[k].shape],
    }
    found = [f"{len(keys)} {label} (e.g. {keys[0]!r})" for label, keys in problems.items() if keys]
    if found:
        raise WeightsError(
            f"Weights in {ckpt.path} do not fit model {model_name!r}: {', '.join(found)}. "
            "Check that the architecture name matches the checkpoint."
        )
    module.load_state_dict(sd, strict=False)
