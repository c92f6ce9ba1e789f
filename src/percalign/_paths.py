"""Where percalign keeps files between runs, and whether it may use the network."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home", "offline", "weights_cache"]


def home() -> Path:
    """percalign's cache folder: ``$PERCALIGN_HOME``, else ``$XDG_CACHE_HOME/percalign``."""
    env = os.environ.get("PERCALIGN_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "percalign"


def weights_cache() -> Path:
    """Folder for weights downloaded from a URL (robustness checkpoints and the like)."""
    return home() / "weights"


def offline() -> bool:
    """True when ``PERCALIGN_OFFLINE`` (or ``HF_HUB_OFFLINE``) is set: never touch the network."""
    flags = (os.environ.get("PERCALIGN_OFFLINE", ""), os.environ.get("HF_HUB_OFFLINE", ""))
    return any(f.strip().lower() in {"1", "true", "yes", "on"} for f in flags)
