"""What percalign knows about a model besides its weights, and the points it can read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["OUTPUT", "PENULTIMATE", "LayerRef", "ModelSpec"]

#: Layer aliases every model understands.
PENULTIMATE = "penultimate"
OUTPUT = "output"


@dataclass(frozen=True)
class ModelSpec:
    """What percalign knows about a model besides its weights.

    Attributes:
        name: the name it was loaded by (with weights tag, if any).
        source: where it came from: ``tiny``, ``torchvision``, ``timm``, ``zoo``, ``torchscript``
            or ``module``.
        input_size: (H, W) the model was made for.
        in_chans: number of input channels.
        mean, std: per-channel normalization applied to [0, 1] pixels inside the wrapper.
        num_classes: size of the classifier output, if it has one.
        weights: a human-readable description of the weights (``none``, an enum name, a path).
        head: module path of the final classifier; its *input* is the ``penultimate`` layer.
        token_pool: how a token sequence (N, T, D) becomes a vector: ``cls``, ``mean`` or ``all``.
        hookable: False for TorchScript, where only the model's output can be read.
        fake_relu_at: which ReLUs fake ReLU makes fake, where the paper's authors put them:
            ``last`` (the last ReLU before the read layer), ``blocks:PATH`` (the final ReLU of
            every block of the stage at PATH, for a layer read after it: ``blocks:layer4``
            for ImageNet ResNets) or ``none`` (the architecture has none in their code: their
            CIFAR VGGs).
        extra: free-form provenance (checkpoint tag, training metadata, ...).
    """

    name: str
    source: str
    input_size: tuple[int, int]
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int | None = None
    weights: str = "none"
    head: str | None = None
    token_pool: str = "all"
    hookable: bool = True
    fake_relu_at: str = "last"
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    def with_input_size(self, size: int | tuple[int, int] | None) -> ModelSpec:
        """Return a copy whose input size is ``size`` (an int means square)."""
        if size is None:
            return self
        hw = (size, size) if isinstance(size, int) else tuple(size)
        return replace(self, input_size=(int(hw[0]), int(hw[1])))


@dataclass(frozen=True)
class LayerRef:
    """A readable point in the network: the output (or input) of the module at ``path``.

    ``path`` is ``""`` for the whole model (the ``output`` alias).
    """

    name: str
    path: str
    use_input: bool = False
