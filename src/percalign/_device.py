"""Which device a step runs on: one resolver for every command, the pipeline and Ray tasks.

``auto`` means the first CUDA GPU when one is visible, else the CPU. An explicit device that
is not there is refused at once with one line (no silent fallback to the CPU: a study that
asked for a GPU would otherwise run for days on the CPU without saying so).
"""

from __future__ import annotations

import torch

from percalign.errors import ConfigError, unknown_name

__all__ = ["AUTO", "cuda_available", "describe", "resolve_device"]

AUTO = "auto"
_KINDS = ("auto", "cpu", "cuda", "mps")


def cuda_available() -> bool:
    """Whether a CUDA GPU is visible (one place, so tests can hide or show one)."""
    return torch.cuda.is_available()


def _cuda_count() -> int:
    return torch.cuda.device_count() if cuda_available() else 0


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(requested: str | torch.device | None = AUTO, what: str = "--device") -> str:
    """The device string to use for ``requested`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``...).

    Args:
        requested: what the user asked for; None and ``auto`` pick CUDA when present.
        what: how the setting is named in messages (``--device``, ``[study] device``).

    Returns:
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises:
        UnknownNameError: not a device name (close matches named).
        ConfigError: the device is not present on this machine.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    if requested is None:
        requested = AUTO
    text = str(requested).strip().lower()
    if text == AUTO:
        return "cuda" if cuda_available() else "cpu"
    kind, _, index = text.partition(":")
    if kind not in _KINDS or (index and not index.isdigit()) or (index and kind == "cpu"):
        raise unknown_name(
            "device",
            str(requested),
            ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "mps"],
            where=f"for {what}",
        )
    if kind == "cuda":
        if not cuda_available():
            raise ConfigError(
                f"{what} {text} was asked for, but CUDA is not available here (torch "
                f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); use "
                f"{what} cpu, or auto to take a GPU only when there is one."
            )
        if index and int(index) >= _cuda_count():
            raise ConfigError(
                f"{what} {text} was asked for, but only {_cuda_count()} CUDA device(s) are "
                f"visible (cuda:0..cuda:{_cuda_count() - 1}); pick one of them."
            )
    if kind == "mps" and not _mps_available():
        raise ConfigError(f"{what} mps was asked for, but MPS is not available here; use cpu.")
    return text


def describe(device: str | torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``: for logs and manifests."""
    dev = torch.device(device)
    if dev.type == "cuda" and cuda_available():
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return str(dev)
