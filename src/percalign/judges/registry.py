"""Judges by name: pixel, ssim, ms-ssim, lpips-*, dreamsim, model:NAME[:LAYER[:cos|l2]]."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from percalign.errors import ConfigError, missing_extra, unknown_name
from percalign.judges.base import Judge
from percalign.judges.lpips import LPIPS
from percalign.judges.simple import MSSSIM, SSIM, PixelL2

__all__ = ["JUDGE_NAMES", "LPIPSJudge", "as_adversary", "get_adversary", "get_judge", "get_judges"]

JUDGE_NAMES = (
    "pixel",
    "ssim",
    "ms-ssim",
    "lpips-alex",
    "lpips-vgg",
    "lpips-squeeze",
    "dreamsim",
    "model:NAME",
)


class LPIPSJudge(Judge):
    """LPIPS with calibrated heads, as a judge."""

    def __init__(self, backbone: str = "alex", device: torch.device | str = "cpu") -> None:
        self.net = LPIPS(backbone).to(device)
        self.name = self.net.name
        self.device = device

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a.to(self.device), b.to(self.device))


class DreamSimJudge(Judge):
    """DreamSim (Fu et al. 2023), if the optional ``dreamsim`` package and its weights exist."""

    name = "dreamsim"

    def __init__(self, device: torch.device | str = "cpu") -> None:
        try:
            from dreamsim import dreamsim
        except ImportError:
            raise missing_extra("The dreamsim judge", "dreamsim") from None
        from percalign import _paths
        from percalign.errors import WeightsNotFoundError

        cache = _paths.home() / "dreamsim"
        if _paths.offline() and not any(cache.glob("*")):
            raise WeightsNotFoundError(
                f"DreamSim weights are not in {cache} (offline); run it once with network "
                "access, or copy its cache folder there."
            )
        self.model, self.preprocess = dreamsim(
            pretrained=True, cache_dir=str(cache), device=str(device)
        )
        self.device = device

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        def prep(x: torch.Tensor) -> torch.Tensor:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            return F.interpolate(x, size=(224, 224), mode="bicubic").clamp(0, 1).to(self.device)

        return self.model(prep(a), prep(b)).flatten()


def get_judge(spec: str, device: torch.device | str = "cpu") -> Judge:
    """Build one judge from its name (see :data:`JUDGE_NAMES`)."""
    spec = spec.strip()
    simple: dict[str, type[PixelL2 | SSIM | MSSSIM]] = {
        "pixel": PixelL2,
        "ssim": SSIM,
        "ms-ssim": MSSSIM,
    }
    if spec in simple:
        return simple[spec]()
    if spec.startswith("lpips-"):
        return LPIPSJudge(spec.removeprefix("lpips-"), device=device)
    if spec == "dreamsim":
        return DreamSimJudge(device=device)
    if spec.startswith("model:"):
        from percalign.judges.features import ModelFeatures
        from percalign.models import load

        parts = spec.split(":")[1:]
        if not parts[0] or len(parts) > 3:
            raise ConfigError(f"Bad judge {spec!r}; write model:NAME[:LAYER[:cos|l2]].")
        model = load(parts[0], device=device)
        return ModelFeatures(model, *(parts[1:] or []))
    raise unknown_name(
        "judge",
        spec,
        [n for n in JUDGE_NAMES if n != "model:NAME"],
        hint="Any model works as model:NAME[:LAYER[:cos|l2]].",
    )


def get_judges(specs: str | Sequence[str], device: torch.device | str = "cpu") -> list[Judge]:
    """Judges from a comma-separated string or a list of names."""
    names = [s for s in (specs.split(",") if isinstance(specs, str) else specs) if s.strip()]
    if not names:
        raise ConfigError("No judges given; use for example --judges pixel,ssim.")
    return [get_judge(n, device) for n in names]


def as_adversary(judge: Judge) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``judge``'s distance as the perceptual term of the adversarial loss (with gradients)."""
    if not judge.differentiable:
        raise ConfigError(
            f"Judge {judge.name!r} has no gradient, so it cannot be the adversary of the "
            "adversarial loss; use a differentiable one: " + ", ".join(JUDGE_NAMES) + "."
        )
    return judge.distance


def get_adversary(
    spec: str, device: torch.device | str = "cpu"
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The judge ``spec`` as the adversarial loss's perceptual distance (:func:`as_adversary`)."""
    return as_adversary(get_judge(spec, device))
