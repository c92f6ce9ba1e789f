"""The models step: load every model of ``[[models]]``, with its paper-table labels (not
recorded: the later steps read it in memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from percalign.study.graph import Inputs
from percalign.study.spec import ModelEntry
from percalign.study.steps.common import model_device

__all__ = ["Models", "load_models", "model_labels"]


@dataclass
class Models:
    """The loaded models of a study, their paper-table labels, and how tasks load them."""

    models: dict[str, Any]
    labels: dict[str, tuple[str, str]]
    entries: dict[str, ModelEntry]

    def id(self, name: str) -> dict[str, Any]:
        """What identifies a model in keys: its name, weights and weights' SHA-256."""
        m = self.models[name]
        return {"name": name, "weights": m.spec.weights, "sha256": m.weights_sha256}


def _model_labels(entry: ModelEntry, meta: dict[str, Any] | None) -> tuple[str, str]:
    """(architecture, training) of a model for the paper-style table."""
    arch = entry.architecture or (meta or {}).get("arch") or entry.name
    training = entry.training
    if training is None and meta is not None:
        training = meta.get("recipe", "?")
        eps = (meta.get("hyperparameters") or {}).get("eps")
        if training in ("adv-l2", "adv-linf", "trades") and eps is not None:
            training += f" eps={eps:g}"
        if (meta.get("hyperparameters") or {}).get("augment") is False:
            training += " no-aug"
    return str(arch), str(training or "pretrained")


def model_labels(models: Sequence[ModelEntry]) -> dict[str, tuple[str, str]]:
    """(architecture, training) of each model for the paper-style tables: as ``[[models]]``
    says, else from the zoo's record of its training (no model is loaded)."""
    from percalign.training.zoo import ZooSource, read_meta

    zoo = ZooSource()
    return {
        entry.name: _model_labels(entry, read_meta(entry.name) if zoo.owns(entry.name) else None)
        for entry in models
    }


def load_models(inputs: Inputs, _parts: list[str]) -> Models:
    from percalign.models import load

    spec = inputs.spec
    found = Models({}, model_labels(spec.models), {})
    for entry in spec.models:
        found.models[entry.name] = load(
            entry.name, weights=entry.weights, device=model_device(spec)
        )
        found.entries[entry.name] = entry
    return found
