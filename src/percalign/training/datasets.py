"""Labelled training data: embedded digits, CIFAR-10/100 files, image folders."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from percalign import _paths
from percalign.data import load_images
from percalign.errors import MissingFileError, unknown_name

__all__ = ["DATASETS", "LabelledData", "check_dataset", "load_dataset"]

DATASETS = ("digits", "cifar10", "cifar100")
_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        b"labels",
        10,
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


@dataclass(frozen=True)
class LabelledData:
    """Images (N, C, H, W) in [0, 1] with int64 labels, plus what training needs to know."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    flip_ok: bool  # False where a mirror image changes the class (digits)

    def subset(self, index: torch.Tensor) -> LabelledData:
        return LabelledData(
            self.name, self.images[index], self.labels[index], self.num_classes, self.flip_ok
        )

    @property
    def in_chans(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std (the normalization a model trained on it uses)."""
        mean = self.images.mean(dim=(0, 2, 3))
        std = self.images.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


def data_root() -> Path:
    return _paths.home() / "data"


def _cifar_files(name: str, split: str, root: Path) -> tuple[Path, list[str]]:
    folder, train_files, test_files, _, _ = _CIFAR[name]
    base = root / folder
    files = train_files if split == "train" else test_files
    missing = [f for f in files if not (base / f).is_file()]
    if missing:
        raise MissingFileError(
            f"{name} files are missing: {base / missing[0]}. Download the Python version of "
            f"{name.upper()} and unpack it so that {base} exists (or pass --data-root)."
        )
    return base, files


def check_dataset(name: str, root: str | Path | None = None) -> None:
    """Raise the error :func:`load_dataset` would raise for a missing or unknown dataset."""
    if name == "digits":
        return
    if name in _CIFAR:
        for split in ("train", "test"):
            _cifar_files(name, split, Path(root) if root else data_root())
        return
    if not Path(name).expanduser().is_dir():
        raise unknown_name(
            "dataset", name, DATASETS, hint="A folder of class sub-folders works too."
        )


def _cifar(name: str, split: str, root: Path) -> LabelledData:
    _, _, _, key, classes = _CIFAR[name]
    base, files = _cifar_files(name, split, root)
    images, labels = [], []
    for f in files:
        with open(base / f, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")  # the dataset's own format
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch[key])
    x = torch.from_numpy(np.concatenate(images)).float() / 255.0
    return LabelledData(name, x, torch.tensor(labels, dtype=torch.long), classes, True)


def load_dataset(
    name: str, split: str = "train", root: str | Path | None = None, image_size: int = 32
) -> LabelledData:
    """A labelled training set.

    Args:
        name: ``digits`` (scikit-learn, 32x32, one channel, the fixed train/test split),
            ``cifar10``/``cifar100`` (the Python-pickle release, read from ``root``, default
            ``$PERCALIGN_HOME/data``), or a folder with one sub-folder per class (its
            ``train``/``test`` sub-folders if present, else the whole folder for both).
        split: ``train`` or ``test``.
        root: where CIFAR files live.
        image_size: side of the square images a class folder is resized to.
    """
    if name == "digits":
        s = load_images("digits", size=32, split=split)
        labels = s.labels if s.labels is not None else torch.zeros(0, dtype=torch.long)
        return LabelledData("digits", s.images, labels, 10, flip_ok=False)
    if name in _CIFAR:
        return _cifar(name, split, Path(root) if root else data_root())
    path = Path(name).expanduser()
    if path.is_dir():
        sub = path / split
        s = load_images(str(sub if sub.is_dir() else path), size=image_size)
        if s.labels is None:
            raise MissingFileError(
                f"{path} needs one sub-folder per class (ImageFolder layout) to train on."
            )
        return LabelledData(str(path), s.images, s.labels, int(s.labels.max()) + 1, True)
    raise unknown_name("dataset", name, DATASETS, hint="A folder of class sub-folders works too.")
