"""The training loop behind every recipe, evaluation, and the SimCLR linear probe."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from percalign import _provenance
from percalign._device import describe, resolve_device
from percalign._random import stream
from percalign.models.archs import build_arch
from percalign.training.attacks import pgd
from percalign.training.augment import augment
from percalign.training.config import TrainConfig
from percalign.training.datasets import LabelledData, load_dataset
from percalign.training.losses import nt_xent, nt_xent_per_view, trades_kl

__all__ = ["EpochReport", "Normalized", "evaluate", "train"]

#: The fixed attacks of the robust-accuracy evaluation.
EVAL_ATTACKS = {"l2": 1.0, "linf": 8 / 255}
EVAL_STEPS = 10
#: Processes that gather training batches into pinned memory on CUDA.
LOADER_WORKERS = 2


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    epochs: int
    loss: float
    accuracy: float | None  # on the training batches (clean or adversarial, as trained)
    seconds: float


class Normalized(nn.Module):
    """Pixels in [0, 1] -> the network, through fixed per-channel normalization."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


class _Penultimate:
    """Reads the classifier head's input on every forward pass (with gradients)."""

    def __init__(self, net: nn.Module, head: str) -> None:
        self.value: torch.Tensor | None = None
        module = dict(net.named_modules())[head]
        self._handle = module.register_forward_pre_hook(
            lambda _m, args: setattr(self, "value", args[0])
        )

    def remove(self) -> None:
        self._handle.remove()

    def __call__(self) -> torch.Tensor:
        if self.value is None:
            raise RuntimeError("no forward pass yet")
        return self.value


def _lr_at(cfg: TrainConfig, epoch_fraction: float) -> float:
    base = cfg.resolved_lr
    if cfg.schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch_fraction))
    if cfg.schedule == "step":
        return base * (0.1 ** ((epoch_fraction >= 0.5) + (epoch_fraction >= 0.75)))
    return base


def _eps_at(cfg: TrainConfig, epoch_fraction: float) -> float:
    if cfg.eps_warmup <= 0:
        return cfg.attack_eps
    return cfg.attack_eps * min(1.0, epoch_fraction / cfg.eps_warmup)


def _device_of(module: nn.Module) -> torch.device:
    first = next(module.parameters(), None)
    return torch.device("cpu") if first is None else first.device


@torch.no_grad()
def _accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 256
) -> float:
    model.eval()
    device = _device_of(model)
    correct = 0
    for i in range(0, len(images), batch):
        logits = model(images[i : i + batch].to(device))
        correct += int((logits.argmax(1).cpu() == labels[i : i + batch].cpu()).sum())
    return correct / max(len(images), 1)


def evaluate(
    model: nn.Module, data: LabelledData, n_attack: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Clean accuracy on all of ``data``; robust accuracy under the fixed PGD attacks.

    ``data`` may stay on the CPU: batches go to the model's device.
    """
    model.eval()
    device = _device_of(model)
    out: dict[str, Any] = {"clean_accuracy": _accuracy(model, data.images, data.labels)}
    x, y = data.images[:n_attack], data.labels[:n_attack]
    robust = {}
    for norm, eps in EVAL_ATTACKS.items():
        adv = []
        for i in range(0, len(x), 256):
            xb, yb = x[i : i + 256].to(device), y[i : i + 256].to(device)

            def loss(z: torch.Tensor, yb: torch.Tensor = yb) -> torch.Tensor:
                return F.cross_entropy(model(z), yb, reduction="none")

            adv.append(
                pgd(
                    loss,
                    xb,
                    eps=eps,
                    norm=norm,
                    steps=EVAL_STEPS,
                    generator=stream("eval", seed, norm, i),
                )
            )
        robust[f"{norm}_eps{eps:.4g}"] = _accuracy(model, torch.cat(adv), y.to(device))
    out["robust_accuracy"] = robust
    out["robust_attack"] = (
        f"PGD, {EVAL_STEPS} steps of 2.5*eps/{EVAL_STEPS}, random start, first {len(x)} test images"
    )
    return out


def _batches(n: int, size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    return [order[i : i + size] for i in range(0, n - size + 1 if n >= size else 1, size)]


def _linear_probe(
    backbone: Normalized,
    feats: _Penultimate,
    head: nn.Linear,
    data: LabelledData,
    steps: int,
    seed: int,
) -> None:
    """Fit ``head`` on frozen penultimate features of ``data`` (full batch, Adam), from an
    initialization drawn from ``seed`` (not from the process's global generator, whose state
    depends on what ran before in the process)."""
    backbone.eval()
    device = _device_of(backbone)
    with torch.no_grad():
        chunks = []
        for i in range(0, len(data.images), 256):
            backbone(data.images[i : i + 256].to(device))
            chunks.append(feats().detach())
        x = torch.cat(chunks)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = nn.Linear(z.shape[1], data.num_classes).to(device)
    labels = data.labels.to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(probe(z), labels).backward()
        opt.step()
    with torch.no_grad():  # fold the feature standardization into the head
        head.weight.copy_(probe.weight / std)
        head.bias.copy_(probe.bias - (probe.weight * (mean / std)).sum(1))


class _EpochBatches:
    """A batch sampler whose batches are set before each epoch (so loader workers persist)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Loader:
    """Training batches (images, labels) on the device, in the order given per epoch.

    On CUDA, worker processes gather each batch and the loader pins it while the GPU computes
    the previous one; the copy to the GPU does not block. Elsewhere the batches are indexed
    directly. Either way the batches hold the same images, so results do not depend on it.
    """

    def __init__(
        self, data: LabelledData, device: torch.device, workers: bool | None = None
    ) -> None:
        self.data, self.device = data, device
        self.sampler = _EpochBatches()
        self.loader: DataLoader | None = None
        if device.type == "cuda" if workers is None else workers:
            self.loader = DataLoader(
                TensorDataset(data.images, data.labels),
                batch_sampler=self.sampler,
                num_workers=LOADER_WORKERS,
                pin_memory=device.type == "cuda",
                persistent_workers=True,
            )

    def epoch(self, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.loader is None:
            for idx in batches:
                yield self.data.images[idx].to(self.device), self.data.labels[idx].to(self.device)
            return
        self.sampler.batches = [idx.tolist() for idx in batches]
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def train(
    cfg: TrainConfig,
    *,
    data_root: str | None = None,
    progress: Callable[[EpochReport], None] | None = None,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, dict[str, Any], dict[int, dict[str, torch.Tensor]]]:
    """Train one model.

    Args:
        cfg: the recipe and its settings.
        data_root: folder holding the dataset files (CIFAR).
        progress: called after every epoch.
        device: ``auto`` or None (CUDA when present, else the CPU), ``cpu``, ``cuda``...;
            the data stays on the CPU and each batch is sent to the device.

    Returns:
        the network on the CPU (taking normalized input, as zoo models do), its metadata
        (architecture, normalization, hyperparameters, accuracies, timing, per-epoch history,
        the device), and the state dicts (on the CPU) kept every ``save_every`` epochs.
    """
    dev = torch.device(resolve_device(device))
    train_data = load_dataset(cfg.dataset, "train", data_root, cfg.image_size)
    if cfg.limit is not None and cfg.limit < len(train_data.images):
        keep = torch.randperm(len(train_data.images), generator=stream("subset", cfg.seed))
        train_data = train_data.subset(keep[: cfg.limit])
    test_data = load_dataset(cfg.dataset, "test", data_root, cfg.image_size)
    mean, std = train_data.channel_stats()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net, head_path, _ = build_arch(
            cfg.arch, train_data.in_chans, train_data.num_classes, cfg.width, train_data.image_size
        )
        head = dict(net.named_modules())[head_path]
        projector = None
        if cfg.is_simclr:
            dim = head.in_features
            projector = nn.Sequential(
                nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, cfg.projection_dim)
            )
    model = Normalized(net, mean, std).to(dev)
    if projector is not None:
        projector.to(dev)
    feats = _Penultimate(net, head_path)
    params = list(model.parameters()) + (list(projector.parameters()) if projector else [])
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            params, lr=cfg.resolved_lr, weight_decay=cfg.resolved_weight_decay
        )
    else:
        opt = torch.optim.SGD(
            params, lr=cfg.resolved_lr, momentum=0.9, weight_decay=cfg.resolved_weight_decay
        )
    order_rng = stream("batches", cfg.seed)
    aug_rng = stream("augment", cfg.seed)
    atk_rng = stream("attack", cfg.seed)
    history, kept = [], {}
    loader = _Loader(train_data, dev)
    started = time.perf_counter()
    n_batches = max(1, len(train_data.images) // cfg.batch_size)
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        total_loss, correct, seen = 0.0, 0, 0
        order = _batches(len(train_data.images), cfg.batch_size, order_rng)
        for b, (x, y) in enumerate(loader.epoch(order)):
            frac = (epoch + b / max(n_batches, 1)) / cfg.epochs
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, frac)
            n_batch = len(y)
            loss, logits, target = _recipe_loss(
                cfg, model, feats, projector, x, y, frac, aug_rng, atk_rng, train_data.flip_ok
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * n_batch
            seen += n_batch
            if logits is not None:
                correct += int((logits.argmax(1) == target).sum())
        report = EpochReport(
            epoch + 1,
            cfg.epochs,
            total_loss / seen,
            None if cfg.is_simclr else correct / seen,
            time.perf_counter() - t0,
        )
        history.append(
            {
                "epoch": report.epoch,
                "loss": round(report.loss, 5),
                "train_accuracy": report.accuracy,
                "seconds": round(report.seconds, 2),
            }
        )
        if progress is not None:
            progress(report)
        if cfg.save_every and (epoch + 1) % cfg.save_every == 0 and epoch + 1 < cfg.epochs:
            snapshot = copy.deepcopy(net)
            if cfg.is_simclr:  # probe the backbone as it is now, into the snapshot's head
                _linear_probe(
                    model,
                    feats,
                    dict(snapshot.named_modules())[head_path],
                    train_data,
                    cfg.probe_epochs,
                    cfg.seed,
                )
            kept[epoch + 1] = {k: v.cpu().clone() for k, v in snapshot.state_dict().items()}
    if cfg.is_simclr:
        _linear_probe(model, feats, head, train_data, cfg.probe_epochs, cfg.seed)
    feats.remove()
    train_seconds = time.perf_counter() - started
    scores = evaluate(model, test_data, cfg.eval_images, cfg.seed)
    meta = {
        "arch": cfg.arch,
        "width": cfg.width or None,
        "in_chans": train_data.in_chans,
        "num_classes": train_data.num_classes,
        "image_size": train_data.image_size,
        "mean": list(mean),
        "std": list(std),
        "recipe": cfg.recipe,
        "dataset": cfg.dataset,
        "epochs": cfg.epochs,
        "seed": cfg.seed,
        "hyperparameters": cfg.to_dict(),
        **scores,
        "train_seconds": round(train_seconds, 1),
        "device": describe(dev),
        "history": history,
        "train_images": len(train_data.images),
        "test_images": len(test_data.images),
        "packages": _provenance.package_versions(),
        "code": _provenance.code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if cfg.is_simclr:
        meta["probe_accuracy"] = scores["clean_accuracy"]
    net.eval()
    return net.cpu(), meta, kept


def _recipe_loss(
    cfg: TrainConfig,
    model: Normalized,
    feats: _Penultimate,
    projector: nn.Module | None,
    x: torch.Tensor,
    y: torch.Tensor,
    frac: float,
    aug_rng: torch.Generator,
    atk_rng: torch.Generator,
    flip_ok: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Loss of one batch under the recipe; also logits and labels for the running accuracy."""
    if cfg.is_simclr and projector is not None:
        v1 = augment(x, cfg.augmentation, aug_rng, flip_ok)
        v2 = augment(x, cfg.augmentation, aug_rng, flip_ok)
        model.train()
        model(v1)
        z1 = projector(feats())
        if cfg.adv_views:
            anchor = z1.detach()

            def view_loss(v: torch.Tensor) -> torch.Tensor:
                model(v)
                return nt_xent_per_view(anchor, projector(feats()), cfg.temperature)[len(v) :]

            model.eval()
            v2 = pgd(
                view_loss,
                v2,
                eps=_eps_at(cfg, frac),
                norm=cfg.attack_norm or "l2",
                steps=cfg.pgd_steps,
                step_size=cfg.step_size,
                generator=atk_rng,
            )
            model.train()
        model(v2)
        z2 = projector(feats())
        return nt_xent(z1, z2, cfg.temperature), None, y
    x = augment(x, cfg.augmentation, aug_rng, flip_ok)
    norm = cfg.attack_norm
    if norm is None:
        model.train()
        logits = model(x)
        return F.cross_entropy(logits, y), logits, y
    eps = _eps_at(cfg, frac)
    model.eval()  # attacks see fixed BatchNorm statistics
    if cfg.recipe == "trades":
        with torch.no_grad():
            clean_logits = model(x)
        start = (x + 0.001 * torch.randn(x.shape, generator=atk_rng).to(x)).clamp(0, 1)
        adv = pgd(
            lambda z: trades_kl(clean_logits, model(z)),
            start,
            eps=eps,
            norm=norm,
            steps=cfg.pgd_steps,
            step_size=cfg.step_size,
            random_start=False,
        )
        model.train()
        logits = model(x)
        robust = trades_kl(logits, model(adv)).mean()
        return F.cross_entropy(logits, y) + cfg.beta * robust, logits, y
    keep = round(cfg.clean_fraction * len(x))
    adv = pgd(
        lambda z: F.cross_entropy(model(z), y[keep:], reduction="none"),
        x[keep:],
        eps=eps,
        norm=norm,
        steps=cfg.pgd_steps,
        step_size=cfg.step_size,
        generator=atk_rng,
    )
    model.train()
    inputs = torch.cat([x[:keep], adv])
    logits = model(inputs)
    return F.cross_entropy(logits, y), logits, y
