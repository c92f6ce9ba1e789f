"""How the methods text names the preset a run started from."""

from __future__ import annotations

from typing import Any

from percalign.inversion.config import PRESETS

__all__ = ["preset_text"]


def preset_text(cfg: dict[str, Any], name: str | None) -> str:
    """The preset the spec named and each of its settings the run changed, as recorded.

    A manifest records ``preset`` only when every preset setting is kept; a spec that names
    a preset and changes its step count ran that preset with one setting changed."""
    if name not in PRESETS:
        return f"the '{cfg['preset']}' preset" if cfg.get("preset") else "no preset"
    changed = [
        f"{key} changed to {cfg[key]}"
        for key, value in PRESETS[name].settings.items()
        if key in cfg and cfg[key] is not None and cfg[key] != value
    ]
    return f"the '{name}' preset" + (f", {', '.join(changed)}" if changed else "")
