"""Settings of a training run, validated on construction."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from percalign._checks import check_choice, check_float, check_int
from percalign._settings import setting
from percalign.errors import ConfigError, unknown_name
from percalign.models.archs import arch_name
from percalign.training.attacks import NORMS

__all__ = ["RECIPES", "TrainConfig"]

#: recipe -> (default augmentation, default attack norm or None)
RECIPES: dict[str, tuple[str, str | None]] = {
    "standard": ("standard", None),
    "adv-l2": ("standard", "l2"),
    "adv-linf": ("standard", "linf"),
    "trades": ("standard", "l2"),
    "simclr": ("simclr", None),
    "supervised-simclr-aug": ("simclr", None),
}
_DEFAULT_EPS = {"l2": 1.0, "linf": 8 / 255}


@dataclass(frozen=True)
class TrainConfig:
    """How to train one zoo model.

    Each field's help is in its metadata (``percalign._settings``): ``percalign train --help``
    and ``[models] train`` of a study spec take the same fields.
    """

    dataset: str = setting(
        "digits", "`digits`, `cifar10`, `cifar100` or a folder of class sub-folders."
    )
    arch: str = setting(
        "small-cnn",
        "Architecture: `small-cnn`, `cifar-resnet18`, ... (`percalign models list`; the old "
        "names `resnet18`, `vgg11`, `vgg16`, `densenet121` still work).",
    )
    recipe: str = setting(
        "standard",
        "`standard`, `adv-l2`, `adv-linf`, `trades`, `simclr` or `supervised-simclr-aug`.",
    )
    epochs: int = setting(10, "Training epochs.")
    batch_size: int = setting(128, "Images per batch.")
    optimizer: str = setting("adam", "`adam` or `sgd` (momentum 0.9).")
    lr: float | None = setting(None, "Learning rate.", shown="1e-3 with Adam, 0.1 with SGD")
    schedule: str = setting("cosine", "`cosine`, `step` (x0.1 at 50% and 75%) or `constant`.")
    weight_decay: float | None = setting(
        None, "L2 penalty on weights.", shown="5e-4 with SGD, 0 with Adam"
    )
    augment: bool = setting(
        True,
        "Apply the recipe's augmentation (`standard`: shifts of up to 4 px and mirroring "
        "where the data allows; SimCLR recipes: their views).",
    )
    simclr_augment: str = setting(
        "full", "SimCLR augmentations: `full` or `no-colour`.", flag="--augment-set"
    )
    eps: float | None = setting(
        None, "Attack radius of adversarial recipes.", shown="1.0 for L2, 8/255 for Linf"
    )
    norm: str | None = setting(
        None,
        "Attack norm for `trades` and adversarial SimCLR views: `l2` or `linf`.",
        shown="the recipe's",
    )
    pgd_steps: int = setting(5, "Steps of the training attack (PGD).")
    step_size: float | None = setting(
        None, "Step of the training attack.", shown="2.5 * eps / pgd_steps"
    )
    eps_warmup: float = setting(
        0.5,
        "Fraction of the epochs over which eps grows linearly from 0 (adversarial training of "
        "small networks collapses without it).",
    )
    clean_fraction: float = setting(
        0.0, "Share of each batch trained on clean images (adversarial recipes)."
    )
    beta: float = setting(6.0, "TRADES weight of the robustness term.")
    temperature: float = setting(0.5, "SimCLR's NT-Xent temperature.")
    projection_dim: int = setting(128, "SimCLR's projection size.")
    adv_views: bool = setting(False, "SimCLR with the second view attacked in projection space.")
    probe_epochs: int = setting(300, "Full-batch steps of the linear probe of SimCLR models.")
    width: int | None = setting(None, "Architecture width.", shown="the architecture's")
    seed: int = setting(0, "Seeds initialization, batch order, augmentation and attacks.")
    save_every: int | None = setting(
        None, "Also keep a checkpoint every this many epochs (loadable as NAME@EPOCH)."
    )
    eval_images: int = setting(256, "Test images of the robust-accuracy evaluation.")
    limit: int | None = setting(
        None, "Train on a seeded subset of this many images (quick runs, tests)."
    )
    image_size: int = setting(
        32, "Side length images of a class folder are resized to (digits and CIFAR are 32 px)."
    )

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        arch_name(self.arch)  # old names (resnet18) are accepted as they were written
        if self.recipe not in RECIPES:
            raise unknown_name("recipe", self.recipe, RECIPES)
        check_int(owner, "epochs", self.epochs, low=1)
        check_int(owner, "batch_size", self.batch_size, low=2)
        check_choice(owner, "optimizer", self.optimizer, ("adam", "sgd"))
        if self.lr is not None:
            check_float(owner, "lr", self.lr, low=0.0, low_open=True)
        check_choice(owner, "schedule", self.schedule, ("cosine", "step", "constant"))
        if self.weight_decay is not None:
            check_float(owner, "weight_decay", self.weight_decay, low=0.0)
        check_choice(owner, "simclr_augment", self.simclr_augment, ("full", "no-colour"))
        if self.eps is not None:
            check_float(owner, "eps", self.eps, low=0.0)
        if self.norm is not None:
            check_choice(owner, "norm", self.norm, NORMS)
        check_int(owner, "pgd_steps", self.pgd_steps, low=1)
        if self.step_size is not None:
            check_float(owner, "step_size", self.step_size, low=0.0, low_open=True)
        check_float(owner, "eps_warmup", self.eps_warmup, low=0.0, high=1.0)
        check_float(owner, "clean_fraction", self.clean_fraction, low=0.0, high=1.0)
        check_float(owner, "beta", self.beta, low=0.0)
        check_float(owner, "temperature", self.temperature, low=0.0, low_open=True)
        check_int(owner, "projection_dim", self.projection_dim, low=1)
        check_int(owner, "probe_epochs", self.probe_epochs, low=1)
        if self.width is not None:
            check_int(owner, "width", self.width, low=1)
        check_int(owner, "seed", self.seed, low=0)
        if self.save_every is not None:
            check_int(owner, "save_every", self.save_every, low=1)
        check_int(owner, "eval_images", self.eval_images, low=1)
        if self.limit is not None:
            check_int(owner, "limit", self.limit, low=2)
        check_int(owner, "image_size", self.image_size, low=8)

    @property
    def is_simclr(self) -> bool:
        return self.recipe == "simclr"

    @property
    def attack_norm(self) -> str | None:
        """The training attack's norm, or None for recipes without one."""
        if self.recipe in ("adv-l2", "adv-linf"):
            return RECIPES[self.recipe][1]
        if self.recipe == "trades" or (self.is_simclr and self.adv_views):
            return self.norm or "l2"
        return None

    @property
    def attack_eps(self) -> float:
        norm = self.attack_norm or "l2"
        return _DEFAULT_EPS[norm] if self.eps is None else float(self.eps)

    @property
    def augmentation(self) -> str:
        if not self.augment:
            return "none"
        base = RECIPES[self.recipe][0]
        if base == "simclr" and self.simclr_augment == "no-colour":
            return "simclr-no-colour"
        return base

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.optimizer == "adam" else 0.1)

    @property
    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 5e-4 if self.optimizer == "sgd" else 0.0

    def check_options(self, given: Iterable[str], flag: Callable[[str], str] = str) -> None:
        """Refuse options given (by field name) that this recipe ignores, in one line;
        ``flag`` names an option as its caller knows it (``--eps``, ``eps``).

        >>> try:
        ...     TrainConfig(eps=0.5).check_options(["eps"])
        ... except ConfigError as exc:
        ...     print(str(exc)[:39])
        eps has no effect on recipe 'standard';
        """
        if "eps" in given and self.attack_norm is None:
            raise ConfigError(
                f"{flag('eps')} has no effect on recipe {self.recipe!r}; drop it, or use "
                f"adv-l2, adv-linf, trades or simclr with {flag('adv_views')}."
            )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            lr=self.resolved_lr,
            weight_decay=self.resolved_weight_decay,
            augmentation=self.augmentation,
            attack_norm=self.attack_norm,
            eps=self.attack_eps if self.attack_norm else None,
        )
        return out
