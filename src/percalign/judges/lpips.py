"""LPIPS (Zhang et al. 2018): a learned perceptual distance, with calibrated heads.

The distance compares unit-normalized feature maps of a backbone at several depths, weighs the
squared differences per channel with linear heads that were calibrated on human judgments, and
averages over space. Heads come from the ``lpips`` package's weight files (installed with
percalign); backbones from torchvision's cache or a given file. Inputs are images in [0, 1];
the conversion to the [-1, 1] range LPIPS was calibrated on happens inside.

The ``*-random`` variants draw their heads at random instead (seeded, as a fresh 1x1
convolution would be initialized): two of the paper's authors' four LPIPS models had such
heads, and their CIFAR adversarial-loss runs used one. They exist to reproduce those runs and
are never a measurement of perceptual distance.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from percalign import _paths
from percalign._random import stream
from percalign.errors import ConfigError, WeightsNotFoundError, unknown_name
from percalign.judges.base import Judge
from percalign.judges.registry import judge

__all__ = ["BACKBONES", "LPIPS", "LPIPSJudge", "RandomHeadLPIPSJudge"]

#: backbone name -> (torchvision constructor, weights enum attribute, tap indices in .features)
BACKBONES = {
    "alex": ("alexnet", "AlexNet_Weights", (1, 4, 7, 9, 11)),
    "vgg": ("vgg16", "VGG16_Weights", (3, 8, 15, 22, 29)),
    "squeeze": ("squeezenet1_1", "SqueezeNet1_1_Weights", (1, 4, 7, 9, 10, 11, 12)),
}
# LPIPS's input scaling, applied after mapping [0, 1] to [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _heads_file(backbone: str) -> Path:
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            "Calibrated LPIPS heads come with the 'lpips' package; install it: pip install lpips"
        )
    path = (
        Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / f"{backbone}.pth"
    )
    if not path.is_file():
        raise WeightsNotFoundError(f"LPIPS head weights {path} are missing; reinstall 'lpips'.")
    return path


def _torchvision_backbone(name: str, weights: str | Path | None) -> nn.Sequential:
    import torchvision

    ctor, enum_name, _ = BACKBONES[name]
    module = getattr(torchvision.models, ctor)(weights=None)
    if weights is None:
        enum = getattr(torchvision.models, enum_name).IMAGENET1K_V1
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
        if not cached.is_file():
            if _paths.offline():
                raise WeightsNotFoundError(
                    f"LPIPS-{name} needs torchvision's {ctor} weights; put {cached.name} into "
                    f"{cached.parent} (TORCH_HOME) or pass backbone_weights=PATH."
                )
            try:
                torch.hub.download_url_to_file(enum.url, str(cached), progress=False)
            except Exception as exc:
                raise WeightsNotFoundError(
                    f"Could not download {enum.url} ({exc}); save it as {cached}."
                ) from exc
        weights = cached
    state = torch.load(weights, map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module.features


class LPIPS(nn.Module):
    """LPIPS distance between image batches in [0, 1]: ``lpips(x, y)`` -> (N,).

    Args:
        backbone: ``alex``, ``vgg`` or ``squeeze`` (torchvision ImageNet weights), or an
            ``nn.Sequential`` of your own with ``taps`` given.
        heads: ``calibrated`` (the published linear heads; the default and the only choice for
            measurements), ``uniform`` (every channel weighted 1: the uncalibrated variant,
            for plumbing tests with a custom backbone), or ``random`` (each channel's weight
            drawn from U(-1/sqrt(C), 1/sqrt(C)), C the tap's channels, from ``seed``: the
            randomly initialized heads of the authors' code, to reproduce their runs).
        seed: the random stream of ``random`` heads.
        backbone_weights: a torchvision state dict file for the backbone, instead of the cache.
        taps: indices into ``backbone`` whose outputs are compared (custom backbones only).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
        >>> d = LPIPS(net, heads="uniform", taps=(1, 3))
        >>> float(d(torch.ones(1, 3, 16, 16) * 0.3, torch.ones(1, 3, 16, 16) * 0.3))
        0.0
    """

    def __init__(
        self,
        backbone: str | nn.Sequential = "alex",
        heads: str = "calibrated",
        backbone_weights: str | Path | None = None,
        taps: Sequence[int] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(backbone, str):
            if backbone not in BACKBONES:
                raise unknown_name("LPIPS backbone", backbone, BACKBONES)
            self.name = f"lpips-{backbone}"
            self.features = _torchvision_backbone(backbone, backbone_weights)
            self.taps = BACKBONES[backbone][2]
        else:
            if taps is None or heads == "calibrated":
                raise ConfigError(
                    "A custom LPIPS backbone needs taps=(...) and heads='uniform': calibrated "
                    "heads exist only for the alex, vgg and squeeze backbones."
                )
            self.name = "lpips-custom"
            self.features = backbone
            self.taps = tuple(taps)
        self.features.eval().requires_grad_(False)
        channels = self._tap_channels()
        if heads == "calibrated":
            state = torch.load(_heads_file(str(backbone)), map_location="cpu", weights_only=True)
            weights = [state[f"lin{i}.model.1.weight"].flatten() for i in range(len(channels))]
        elif heads == "uniform":
            weights = [torch.ones(c) for c in channels]
        elif heads == "random":
            weights = [
                (torch.rand(c, generator=stream("lpips-random-head", seed, i)) * 2 - 1) / c**0.5
                for i, c in enumerate(channels)
            ]
            self.name += "-random"
        else:
            raise unknown_name("LPIPS heads", heads, ["calibrated", "uniform", "random"])
        for i, w in enumerate(weights):
            self.register_buffer(f"head{i}", w.view(1, -1, 1, 1).clone())
        self.shift: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def _tap_channels(self) -> list[int]:
        param = next(self.features.parameters())
        with torch.no_grad():
            outs = self._taps_of(torch.zeros(1, 3, 64, 64, device=param.device))
        return [o.shape[1] for o in outs]

    def _taps_of(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        last = max(self.taps)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
            if i == last:
                break
        return outs

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS between matching images of ``x`` and ``y``, (N, C, H, W) in [0, 1] -> (N,)."""
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        both = torch.cat([x, y]) * 2.0 - 1.0
        feats = self._taps_of((both - self.shift) / self.scale)
        total = x.new_zeros(x.shape[0])
        for i, f in enumerate(feats):
            f = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            fx, fy = f.chunk(2)
            total = total + ((fx - fy).pow(2) * getattr(self, f"head{i}")).sum(1).mean((1, 2))
        return total


@judge(
    "lpips-alex",
    "lpips-vgg",
    "lpips-squeeze",
    summary="LPIPS with the calibrated heads (torchvision backbone weights from its cache)",
)
class LPIPSJudge(Judge):
    """LPIPS with calibrated heads, as a judge."""

    heads = "calibrated"

    def __init__(self, backbone: str = "alex", device: torch.device | str = "cpu") -> None:
        self.net = LPIPS(backbone, heads=self.heads).to(device)
        self.name = self.net.name
        self.device = device

    @classmethod
    def from_name(cls, name: str, device: torch.device | str = "cpu") -> LPIPSJudge:
        return cls(name.removeprefix("lpips-").removesuffix("-random"), device=device)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a.to(self.device), b.to(self.device))


@judge(
    "lpips-alex-random",
    "lpips-vgg-random",
    "lpips-squeeze-random",
    summary="LPIPS with random heads, as in two of the paper authors' four LPIPS models: for "
    "reproducing their adversarial runs (with lambda 'auto'), never for measurements",
)
class RandomHeadLPIPSJudge(LPIPSJudge):
    """LPIPS whose heads are drawn at random (seeded): the authors' uncalibrated variant."""

    heads = "random"
