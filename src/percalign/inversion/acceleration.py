"""How the optimized forward pass runs: batch norms folded into convolutions, channels-last,
bf16 autocast, ``torch.compile``.

None of these changes the loss being minimized; each changes how it is computed. The
reported distances (seed and final) are always computed eagerly in float32, by the network
as given.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import fx, nn

from percalign.models.extractor import FeatureExtractor
from percalign.models.model import Model

__all__ = ["fast_features", "fold_batchnorm", "model_for_run"]

Features = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def model_for_run(
    model: Model, channels_last: bool, fold: bool = False, keep: Iterable[str] = ()
) -> Model:
    """The model the optimization runs: ``model`` itself, or a copy of it.

    Args:
        model: the caller's model; never changed (its memory format is the caller's
            business, and a Ray worker's cached model is shared by later tasks).
        channels_last: the copy is channels-last.
        fold: fold batch norms into the convolutions before them (:func:`fold_batchnorm`).
        keep: module paths whose own outputs must stay as they are (the objective's layers).
    """
    fold = fold and model.spec.hookable  # a TorchScript network cannot be traced
    if not (channels_last or fold):
        return model
    module = copy.deepcopy(model.module)
    if fold and not fold_batchnorm(module, keep) and not channels_last:
        return model  # nothing to fold: no copy needed
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    return Model(module, model.spec)


def fold_batchnorm(module: nn.Module, keep: Iterable[str] = ()) -> list[str]:
    """Fold each eval-mode ``BatchNorm2d`` that only follows a ``Conv2d`` into it, in place.

    The folded convolution computes ``bn(conv(x))`` itself (up to float rounding) and the
    batch norm becomes an identity under the same name, so hooks on any other module read
    what they read before; on a CPU a step of a small CNN then costs about a third less.
    A pair is left alone when either module's path is in ``keep`` (an objective that reads
    the convolution's own output), when the convolution's output goes anywhere else, and
    when the network cannot be traced symbolically (then nothing is folded).

    Args:
        module: the network (changed in place: pass a copy).
        keep: module paths not to fold.

    Returns:
        The paths of the folded batch norms.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
        >>> _ = net[1].running_mean.uniform_(), net[1].running_var.uniform_(0.5, 2)
        >>> x = torch.rand(2, 1, 8, 8)
        >>> before = net(x)
        >>> fold_batchnorm(net)
        ['1']
        >>> torch.allclose(net(x), before, atol=1e-5), type(net[1]).__name__
        (True, 'Identity')
    """
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:  # any network fx cannot trace runs unfolded
        return []
    keep = set(keep)
    modules = dict(module.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    folded = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
            continue
        source = node.args[0] if node.args else None
        if not isinstance(source, fx.Node) or source.op != "call_module":
            continue
        conv, bn = modules.get(source.target), modules[node.target]
        if (
            not isinstance(conv, nn.Conv2d)
            or len(source.users) != 1
            or calls[str(source.target)] != 1
            or calls[str(node.target)] != 1
            or bn.training
            or bn.running_mean is None
            or bn.running_var is None
            or {source.target, node.target} & keep
        ):
            continue
        with torch.no_grad():
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.affine:
                scale = scale * bn.weight
            shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            new_bias = bias * scale + shift
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            if conv.bias is None:
                conv.bias = nn.Parameter(new_bias, requires_grad=False)
            else:
                conv.bias.copy_(new_bias)
        parent, _, name = node.target.rpartition(".")
        setattr(modules[parent] if parent else module, name, nn.Identity())
        folded.append(node.target)
    return folded


def fast_features(
    extractor: FeatureExtractor, precision: str, channels_last: bool, compile: bool
) -> Features:
    """The extractor's function as the optimization runs it.

    Args:
        extractor: reads the objective's layers.
        precision: ``fp32`` or ``bf16`` (autocast on the input's device type).
        channels_last: feed the network channels-last input.
        compile: run it through ``torch.compile`` (the whole network traced, truncated by
            dead-code elimination; see :meth:`FeatureExtractor.traceable`). The first call
            compiles (seconds to minutes), and once more when the batch size first changes.
    """
    base: Features = extractor.traceable() if compile else extractor

    def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if precision == "bf16":
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
                return base(x)
        return base(x)

    if not compile:
        return features
    # Batch sizes change (the last batch; batches shrinking to their active images): after
    # the first change torch.compile makes the batch dimension dynamic, so a run compiles at
    # most twice instead of once per size.
    return torch.compile(features)
