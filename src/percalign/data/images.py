"""Image sets: the embedded digits, scikit-image's sample photographs, folders and globs."""

from __future__ import annotations

import glob as globlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from percalign._checks import check_choice, check_int
from percalign.errors import ConfigError, ImageReadError, InputShapeError, unknown_name

__all__ = [
    "ImageSet",
    "builtin_sources",
    "choose",
    "load_images",
    "read_image",
    "resize",
    "to_channels",
]

SPLITS = ("all", "train", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
#: scikit-image photographs that ship inside the package (no download needed).
SAMPLE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)


@dataclass(frozen=True)
class ImageSet:
    """Images with stable ids and optional labels.

    Attributes:
        images: (N, C, H, W) float32 in [0, 1].
        ids: one stable identifier per image (``digits/0042``, a file path...).
        labels: (N,) int64 class labels, or None.
        source: the source string it was loaded from.
    """

    images: torch.Tensor
    ids: tuple[str, ...]
    labels: torch.Tensor | None
    source: str

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: Sequence[int]) -> ImageSet:
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return ImageSet(
            self.images[idx],
            tuple(self.ids[i] for i in idx.tolist()),
            None if self.labels is None else self.labels[idx],
            self.source,
        )


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Give (N, C, H, W) images ``channels`` channels: grayscale is replicated to RGB.

    Raises :class:`InputShapeError` for any other change (colour cannot become grey silently).
    """
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    raise InputShapeError(
        f"Images have {x.shape[1]} channels but {channels} are needed; only grayscale -> RGB "
        "is converted automatically. Convert the images first."
    )


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre-crop to the aspect ratio of ``size`` and resize (antialiased) to it."""
    h, w = x.shape[-2:]
    th, tw = size
    if (h, w) == (th, tw):
        return x
    scale = min(h / th, w / tw)
    ch, cw = round(th * scale), round(tw * scale)
    top, left = (h - ch) // 2, (w - cw) // 2
    x = x[..., top : top + ch, left : left + cw]
    out = F.interpolate(
        x, size=(th, tw), mode="bilinear", align_corners=False, antialias=ch > th or cw > tw
    )
    return out.clamp(0.0, 1.0)


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as (C, H, W) float32 in [0, 1]; grayscale stays one channel."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = "L" if img.mode in {"1", "L", "I;16", "I", "F"} else "RGB"
            arr = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageReadError(f"Cannot read image {str(path)!r}: {exc}") from exc
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)


def _stack(images: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    channels = 3 if any(t.shape[0] == 3 for t in images) else 1
    return torch.cat([resize(to_channels(t.unsqueeze(0), channels), size) for t in images])


def _split_index(labels: np.ndarray, split: str) -> np.ndarray:
    """A fixed, stratified 75/25 train/test split (seed 0), the same on every machine."""
    index = np.arange(len(labels))
    if split == "all":
        return index
    rng = np.random.default_rng(0)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = index[labels == label]
        chosen = rng.permutation(members)[: round(len(members) * 0.25)]
        test[chosen] = True
    return index[test] if split == "test" else index[~test]


def _digits(size: tuple[int, int], split: str) -> ImageSet:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    index = _split_index(bunch.target, split)
    pixels = torch.from_numpy(bunch.images[index].astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    return ImageSet(
        images,
        tuple(f"digits/{i:04d}" for i in index),
        torch.from_numpy(bunch.target[index].astype(np.int64)),
        "digits",
    )


def _samples(size: tuple[int, int], split: str) -> ImageSet:
    import skimage.data

    if split != "all":
        raise ConfigError("The 'samples' photographs have no train/test split; use split='all'.")
    images = []
    for name in SAMPLE_PHOTOS:
        arr = np.asarray(getattr(skimage.data, name)())
        arr = arr[..., :3] if arr.ndim == 3 else arr
        scale = 255.0 if arr.dtype == np.uint8 else max(float(arr.max()), 1.0)
        t = torch.from_numpy(arr.astype(np.float32) / scale)
        images.append(t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1))
    ids = tuple(f"samples/{n}" for n in SAMPLE_PHOTOS)
    return ImageSet(_stack(images, size), ids, None, "samples")


def _files(pattern: str, size: tuple[int, int], split: str) -> ImageSet:
    path = Path(pattern).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = sorted(
            Path(p) for p in globlib.glob(str(path), recursive=True) if Path(p).is_file()
        )
    if not files:
        raise ImageReadError(
            f"No image files found at {pattern!r}; give a folder of images, a glob such as "
            "'photos/*.png', or one of: " + ", ".join(builtin_sources()) + "."
        )
    if split != "all":
        raise ConfigError("Image folders have no train/test split; use split='all'.")
    labels = None
    if path.is_dir():
        classes = sorted({f.parent.relative_to(path).as_posix() for f in files})
        if len(classes) > 1:  # ImageFolder layout: one sub-folder per class
            labels = torch.tensor(
                [classes.index(f.parent.relative_to(path).as_posix()) for f in files]
            )
    return ImageSet(
        _stack([read_image(f) for f in files], size), tuple(str(f) for f in files), labels, pattern
    )


_BUILTIN: dict[str, Callable[[tuple[int, int], str], ImageSet]] = {
    "digits": _digits,
    "samples": _samples,
}


def builtin_sources() -> list[str]:
    return sorted(_BUILTIN)


def load_images(
    source: str,
    n: int | None = None,
    *,
    size: int | tuple[int, int] = 32,
    split: str = "all",
    seed: int = 0,
) -> ImageSet:
    """Load an image set and, if ``n`` is given, pick ``n`` images from it reproducibly.

    Args:
        source: ``digits`` (scikit-learn's handwritten digits, 8x8 upsampled, one channel),
            ``samples`` (scikit-image's sample photographs), or a folder or glob of image files.
        n: how many images to pick (a seeded choice, returned in source order); None for all.
        size: output (H, W), or an int for square images.
        split: ``all``, or for digits the fixed ``train``/``test`` split.
        seed: seed of the choice of ``n`` images.

    Example:
        >>> from percalign.data import load_images
        >>> s = load_images("digits", 4, size=32)
        >>> tuple(s.images.shape), s.labels is not None
        ((4, 1, 32, 32), True)
    """
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    check_int("load_images", "size", hw[0], low=1)
    check_choice("load_images", "split", split, SPLITS)
    if source in _BUILTIN:
        found = _BUILTIN[source](hw, split)
    elif any(ch in source for ch in "/*?.") or Path(source).exists():
        found = _files(source, hw, split)
    else:
        raise unknown_name(
            "image source",
            source,
            builtin_sources(),
            hint="A folder or glob of image files works too.",
        )
    return found if n is None else choose(found, n, seed)


def choose(images: ImageSet, n: int, seed: int = 0) -> ImageSet:
    """``n`` images of the set, a seeded choice returned in the set's order."""
    check_int("load_images", "n", n, low=1, high=len(images))
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    return images.subset(chosen.tolist())
