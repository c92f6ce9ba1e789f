"""Files and formats: PNG stimuli, inversion run folders and their manifests."""

from percalign.store.images import png_bytes, read_png, write_png
from percalign.store.runs import MANIFEST, atomic_folder, check_output, read_manifest, save_run

__all__ = [
    "MANIFEST",
    "atomic_folder",
    "check_output",
    "png_bytes",
    "read_manifest",
    "read_png",
    "save_run",
    "write_png",
]
