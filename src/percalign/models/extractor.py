"""Read representations at named layers, with gradients, stopping at the deepest one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from percalign._checks import check_choice
from percalign.errors import ConfigError, InputShapeError
from percalign.models.spec import LayerRef, ModelSpec

__all__ = ["FeatureExtractor", "Readable", "pool_tokens"]

TOKEN_POOLS = ("cls", "mean", "all")
_RELU_FUNCS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _StopForward(BaseException):
    """Raised from a hook once every requested layer has been read."""


class _FakeReLU(torch.autograd.Function):
    """ReLU forward, identity backward (the 'fake ReLU' of Engstrom et al.)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


class _ReluCounter(TorchFunctionMode):
    """Counts ReLU calls (module or functional) and fakes the ones whose index is listed."""

    def __init__(self, fake_at: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.count = 0
        self.fake_at = fake_at

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        if func in _RELU_FUNCS:
            index, self.count = self.count, self.count + 1
            if index in self.fake_at:
                return _FakeReLU.apply(args[0])
        return func(*args, **(kwargs or {}))


def pool_tokens(t: torch.Tensor, how: str) -> torch.Tensor:
    """Reduce tokens (N, T, D) to (N, D) by the first token or the mean; 'all' keeps them."""
    if t.ndim != 3 or how == "all":
        return t
    return t[:, 0] if how == "cls" else t.mean(dim=1)


class Readable(Protocol):
    """What a :class:`FeatureExtractor` reads of a model: :class:`~percalign.models.Model`
    is one (this module does not import it: a model makes extractors of itself)."""

    spec: ModelSpec
    module: nn.Module

    @property
    def device(self) -> torch.device: ...

    def resolve_layer(self, name: str) -> LayerRef: ...

    def normalize(self, x: torch.Tensor) -> torch.Tensor: ...

    def check_input(self, x: torch.Tensor) -> None: ...


def _first_tensor(value: Any) -> torch.Tensor:
    while isinstance(value, (tuple, list)):
        value = value[0]
    if not isinstance(value, torch.Tensor):
        raise InputShapeError(f"Layer output is a {type(value).__name__}, not a tensor.")
    return value


class FeatureExtractor(nn.Module):
    """Representations of pixel images at one or more named layers of a :class:`Model`.

    The forward pass clamps the input to [0, 1], applies the model's normalization, runs the
    network and returns ``{layer name: tensor (N, ...)}``. It stops as soon as every requested
    layer has been read, so reading an early layer costs only the network up to that layer.
    A module that runs several times in one forward pass is read at its first call.
    Gradients flow to the input; the model's weights are frozen.

    Args:
        model: the wrapped network.
        layers: module paths or aliases (``penultimate``: the input of the classifier head;
            ``output``: the model's output).
        fake_relu: make the last ReLU before each requested layer pass gradients backward
            unchanged (forward values are untouched).
        token_pool: how token outputs (N, T, D) are reduced: ``cls``, ``mean`` or ``all``;
            default from the model's spec.
        normalize: clamp to [0, 1] and apply the model's mean/std; False feeds the network
            the pixels as they are (as the paper's authors' adversarial runs did).

    Example:
        >>> import torch, percalign as pa
        >>> fx = pa.models.load("tiny-cnn").extractor(["block2", "penultimate"])
        >>> {k: tuple(v.shape) for k, v in fx(torch.rand(2, 3, 32, 32)).items()}
        {'block2': (2, 16, 8, 8), 'penultimate': (2, 32)}
    """

    def __init__(
        self,
        model: Readable,
        layers: Sequence[str],
        fake_relu: bool = False,
        token_pool: str | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        if isinstance(layers, str):
            layers = [layers]
        if not layers:
            raise ConfigError("FeatureExtractor needs at least one layer; got none.")
        self.model = model
        self.refs: dict[str, LayerRef] = {}
        for name in layers:
            self.refs.setdefault(name, model.resolve_layer(name))
        self.token_pool = check_choice(
            "FeatureExtractor", "token_pool", token_pool or model.spec.token_pool, TOKEN_POOLS
        )
        self.fake_relu = bool(fake_relu)
        self._net = model.module  # registered, so .to() and .parameters() see it
        self._fake_at: frozenset[int] = frozenset()
        self._persistent: list[Any] = []  # hooks of traceable()
        self._check_layers_and_find_relus()

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """What the network is given: the clamped, normalized pixels, or the pixels as given."""
        return self.model.normalize(x) if self.normalize else x

    @property
    def layers(self) -> list[str]:
        return list(self.refs)

    def _run(
        self, x: torch.Tensor, mode: _ReluCounter | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """Forward until every layer is read; return outputs and, per layer, ReLU calls seen."""
        captured: dict[str, torch.Tensor] = {}
        relus_before: dict[str, int] = {}
        modules = dict(self._net.named_modules())
        handles = []

        def record(name: str, value: Any) -> None:
            if name in captured:
                return
            tensor = _first_tensor(value)
            relus_before[name] = mode.count if mode is not None else 0
            if len(captured) + 1 == len(self.refs):
                captured[name] = tensor
                raise _StopForward
            # the forward goes on: keep a copy that later in-place ops cannot overwrite
            captured[name] = tensor.clone()

        for name, ref in self.refs.items():
            module = modules[ref.path]
            if not ref.path:  # the model's output: the forward's return value
                continue
            if ref.use_input:
                handles.append(
                    module.register_forward_pre_hook(lambda _m, args, n=name: record(n, args))
                )
            else:
                handles.append(
                    module.register_forward_hook(lambda _m, _args, out, n=name: record(n, out))
                )
        outputs = [n for n, ref in self.refs.items() if not ref.path]
        try:
            with mode if mode is not None else contextlib.nullcontext():
                result = self._net(self._input(x))
            for name in outputs:
                record(name, result)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in self.refs if n not in captured]
        if missing:
            raise InputShapeError(
                f"Layers {missing} of {self.model.spec.name!r} did not run in a forward pass; "
                "choose modules the model calls (see `percalign models show`)."
            )
        return captured, relus_before

    def _check_layers_and_find_relus(self) -> None:
        """One dry run on a blank image: validates the layers and locates the fake ReLUs.

        Where fake ReLUs go follows the model's ``spec.fake_relu_at``: the last ReLU call
        before each layer (``last``); for ``blocks:PATH`` and a layer read after that stage,
        the last ReLU call of each of the stage's blocks instead; none for ``none``. ReLUs are
        located by the order of their calls.
        """
        h, w = self.model.spec.input_size
        x = torch.zeros(1, self.model.spec.in_chans, h, w, device=self.model.device)
        counter = _ReluCounter() if self.fake_relu else None
        block_ends: list[tuple[int, int]] = []  # ReLU calls before and after each block
        handles = []
        rule = self.model.spec.fake_relu_at
        stage = rule.removeprefix("blocks:") if rule.startswith("blocks:") else None
        if counter is not None and stage:
            for block in dict(self._net.named_modules())[stage].children():
                start = [0]
                handles.append(
                    block.register_forward_pre_hook(
                        lambda *_, s=start: s.__setitem__(0, counter.count)
                    )
                )
                handles.append(
                    block.register_forward_hook(
                        lambda *_, s=start: block_ends.append((s[0], counter.count))
                    )
                )
        try:
            with torch.no_grad():
                _, relus_before = self._run(x, counter)
        finally:
            for handle in handles:
                handle.remove()
        if self.fake_relu and rule == "none":
            self._fake_at = frozenset()
        elif self.fake_relu:
            missing = [n for n, c in relus_before.items() if c == 0]
            if missing:
                raise ConfigError(
                    f"fake_relu: no ReLU runs before layer(s) {missing} of "
                    f"{self.model.spec.name!r}; turn fake_relu off for them."
                )
            stage_last = {end - 1 for begin, end in block_ends if end > begin}
            fake = set()
            for count in relus_before.values():
                after_stage = bool(stage_last) and count > max(stage_last)
                fake |= stage_last if after_stage else {count - 1}
            self._fake_at = frozenset(fake)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Representations of ``x`` (N, C, H, W) in [0, 1], keyed by layer name."""
        self.model.check_input(x)
        mode = _ReluCounter(self._fake_at) if self.fake_relu else None
        captured, _ = self._run(x, mode)
        return {name: pool_tokens(captured[name], self.token_pool) for name in self.refs}

    def traceable(self) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
        """The same function as :meth:`forward`, in a form ``torch.compile`` can trace whole.

        :meth:`forward` stops the network with an exception once the last layer is read;
        a compiler cannot trace that. The function returned here runs the whole network with
        hooks that copy the requested layers out, and returns only those copies, so a
        compiler's dead-code elimination drops the rest of the network (and of the backward):
        the compiled graph is the truncated network. Eager, it costs the full forward.
        The hooks stay on the network until the extractor is garbage collected; they act
        only inside the returned function.
        """
        sink: dict[str, torch.Tensor] = {}
        active = [False]
        modules = dict(self._net.named_modules())

        def keep(name: str, value: Any) -> None:
            if active[0] and name not in sink:
                sink[name] = _first_tensor(value).clone()

        for name, ref in self.refs.items():
            if not ref.path:
                continue
            module = modules[ref.path]
            if ref.use_input:
                handle = module.register_forward_pre_hook(lambda _m, a, n=name: keep(n, a))
            else:
                handle = module.register_forward_hook(lambda _m, _a, o, n=name: keep(n, o))
            self._persistent.append(handle)

        def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
            sink.clear()
            active[0] = True
            try:
                with _ReluCounter(self._fake_at) if self.fake_relu else contextlib.nullcontext():
                    result = self._net(self._input(x))
                for name, ref in self.refs.items():
                    if not ref.path:
                        keep(name, result)
            finally:
                active[0] = False
            out = {name: pool_tokens(sink[name], self.token_pool) for name in self.refs}
            sink.clear()
            return out

        return features

    def __del__(self) -> None:
        for handle in getattr(self, "_persistent", ()):
            handle.remove()
