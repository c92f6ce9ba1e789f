"""The model wrapper: a network plus what percalign needs to know about it."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import torch
from torch import nn

from percalign._clamp import clamp
from percalign.errors import InputShapeError, UnknownNameError, unknown_name
from percalign.models.extractor import FeatureExtractor
from percalign.models.spec import OUTPUT, PENULTIMATE, LayerRef, ModelSpec

__all__ = ["OUTPUT", "PENULTIMATE", "LayerRef", "Model", "ModelSpec"]


class Model:
    """A network in eval mode with frozen weights, plus its :class:`ModelSpec`.

    The network takes *normalized* input; everything percalign hands to a ``Model`` is in
    pixel space [0, 1] and is normalized inside (:meth:`normalize`).

    Example:
        >>> import percalign as pa
        >>> m = pa.models.load("tiny-cnn")
        >>> m.spec.input_size
        (32, 32)
        >>> m.resolve_layer("penultimate").path
        'fc'
    """

    def __init__(self, module: nn.Module, spec: ModelSpec) -> None:
        module.eval()
        for param in module.parameters():  # (ScriptModules lack requires_grad_)
            param.requires_grad_(False)
        self.module = module
        self.spec = spec
        self._digest: str | None = None

    def __repr__(self) -> str:
        return (
            f"Model({self.spec.name!r}, source={self.spec.source!r}, weights={self.spec.weights!r})"
        )

    # -- devices ---------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        first = next(itertools.chain(self.module.parameters(), self.module.buffers()), None)
        return torch.device("cpu") if first is None else first.device

    def to(self, device: torch.device | str) -> Model:
        """Move the network to ``device`` in place and return self."""
        self.module.to(device)
        return self

    # -- layers ----------------------------------------------------------------
    def module_paths(self) -> list[str]:
        """Paths of every submodule, in registration order (``layer4.1.conv2``, ...)."""
        return [path for path, _ in self.module.named_modules() if path]

    def layer_names(self) -> list[str]:
        """Every name :meth:`resolve_layer` accepts."""
        aliases = [OUTPUT] + ([PENULTIMATE] if self.spec.head is not None else [])
        return aliases + (self.module_paths() if self.spec.hookable else [])

    def resolve_layer(self, name: str) -> LayerRef:
        """Turn a layer name (a module path or an alias) into a :class:`LayerRef`."""
        if name == OUTPUT:
            return LayerRef(name, "")
        if name == PENULTIMATE:
            if self.spec.head is None:
                raise UnknownNameError(
                    f"Model {self.spec.name!r} has no classifier head, so 'penultimate' is "
                    "undefined. Name a module path instead (see `percalign models show`)."
                )
            return LayerRef(name, self.spec.head, use_input=True)
        if not self.spec.hookable:
            raise UnknownNameError(
                f"Layer {name!r} cannot be read from {self.spec.name!r}: a TorchScript model "
                "exposes only its 'output'. Load the model from Python code to reach inner layers."
            )
        if name in dict(self.module.named_modules()) and name:
            return LayerRef(name, name)
        raise unknown_name(
            "layer",
            name,
            self.layer_names(),
            where=f"in model {self.spec.name!r}",
            hint=f"List them with `percalign models show {self.spec.name} --all`.",
        )

    def extractor(
        self,
        layers: Sequence[str] = (PENULTIMATE,),
        fake_relu: bool = False,
        token_pool: str | None = None,
        normalize: bool = True,
    ) -> FeatureExtractor:
        """A :class:`~percalign.models.FeatureExtractor` reading ``layers`` of this model."""
        return FeatureExtractor(
            self, layers, fake_relu=fake_relu, token_pool=token_pool, normalize=normalize
        )

    # -- computing ---------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` unless ``x`` is (N, in_chans, H, W) floating point."""
        if x.ndim != 4 or x.shape[1] != self.spec.in_chans or not x.is_floating_point():
            raise InputShapeError(
                f"Model {self.spec.name!r} takes float images of shape (N, {self.spec.in_chans}, "
                f"H, W) in [0, 1]; got {x.dtype} of shape {tuple(x.shape)}. "
                "Convert grayscale to RGB with percalign.data.to_channels."
            )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Clamp pixels to [0, 1] and apply the model's mean/std.

        The clamp passes the gradient at exactly 0 and 1 and stops it outside the box, on
        any PyTorch (:func:`percalign._clamp.clamp`): a clamped-pixel inversion moves the
        pixels its projection put on a bound.
        """
        mean = torch.as_tensor(self.spec.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.spec.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (clamp(x) - mean) / std

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores for pixel images ``x`` (N, C, H, W) in [0, 1]."""
        self.check_input(x)
        out = self.module(self.normalize(x))
        return out[0] if isinstance(out, (tuple, list)) else out

    @property
    def weights_sha256(self) -> str:
        """SHA-256 of the weights' contents (names, dtypes, shapes, bytes), for provenance."""
        if self._digest is None:
            h = hashlib.sha256()
            for key, tensor in self.module.state_dict().items():
                t = tensor.detach().cpu().contiguous()
                h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
                if t.numel():
                    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
            self._digest = h.hexdigest()
        return self._digest
