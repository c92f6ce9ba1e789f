"""Image sources: embedded digits, sample photographs, folders and globs of files."""

from percalign.data.images import (
    ImageSet,
    builtin_sources,
    choose,
    load_images,
    read_image,
    resize,
    to_channels,
)

__all__ = [
    "ImageSet",
    "builtin_sources",
    "choose",
    "load_images",
    "read_image",
    "resize",
    "to_channels",
]
