"""Settings of an inversion: the optimizer, the loss family, the objective's layers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from percalign._checks import check_choice, check_float, check_int
from percalign._settings import setting
from percalign.errors import ConfigError, unknown_name
from percalign.inversion.parameterizations import PARAMETERIZATIONS
from percalign.inversion.penalties import PENALTIES
from percalign.inversion.steps import STEP_RULES

__all__ = [
    "LOSS_FAMILIES",
    "PRESETS",
    "InversionConfig",
    "LossSpec",
    "Objective",
    "Preset",
    "comparison_loss",
    "parse_objectives",
]

#: Learning rates used when none is given, per optimizer and parameterization: the paper's
#: 1.0 for the normalized step on pixels; on the sigmoid's logits, steps about 4x larger
#: move mid-grey pixels as far (the sigmoid's slope there is 1/4).
DEFAULT_LR = {
    ("normalized-gd", "pixel"): 1.0,
    ("adam", "pixel"): 0.02,
    ("sgd", "pixel"): 100.0,
    ("normalized-gd", "sigmoid"): 4.0,
    ("adam", "sigmoid"): 0.1,
    ("sgd", "sigmoid"): 400.0,
}
SCHEDULES = ("constant", "step", "cosine")
PRECISIONS = ("fp32", "bf16")
FOURIER_STARTS = ("spectrum", "image")
#: How the variables map to pixels, for loss families that do not choose it (``fourier`` does).
PIXEL_PARAMETERIZATIONS = tuple(k for k in PARAMETERIZATIONS if k != "fourier")


@dataclass(frozen=True)
class LossSpec:
    """One loss family, with every weight explicit.

    total = representation_weight * L(x)  +  sum_k w_k * penalty_k(x)  -  lambda * LPIPS(x, target)

    where L is the (weighted, multi-layer) relative representation distance, computed on the
    randomly transformed image when ``transforms`` is on, and the last term is present only
    when ``adversarial`` is on.
    """

    name: str = "regularizer-free"
    parameterization: str = "pixel"
    transforms: bool = False
    representation_weight: float = 1.0
    penalties: tuple[tuple[str, float], ...] = ()
    adversarial: bool = False

    def __post_init__(self) -> None:
        check_choice("LossSpec", "parameterization", self.parameterization, ("pixel", "fourier"))
        for name, weight in self.penalties:
            if name not in PENALTIES:
                raise unknown_name("penalty", name, PENALTIES)
            check_float("LossSpec", f"penalty weight of {name}", weight, low=0.0)

    @classmethod
    def parse(cls, spec: str) -> LossSpec:
        """A family name, or several joined by '+' (``fourier+transforms``)."""
        parts = [p.strip() for p in spec.split("+") if p.strip()]
        if not parts:
            raise ConfigError("Empty loss name; use one of: " + ", ".join(LOSS_FAMILIES) + ".")
        fields: dict[str, Any] = {"penalties": ()}
        for part in parts:
            if part not in LOSS_FAMILIES:
                raise unknown_name("loss family", part, LOSS_FAMILIES)
            for key, value in LOSS_FAMILIES[part].items():
                if key == "penalties":
                    fields["penalties"] += value
                elif key == "representation_weight":
                    fields[key] = max(fields.get(key, 1.0), value)
                else:
                    fields[key] = value
        return cls(name="+".join(parts), **fields)


_PAPER_PENALTY_REP = 10.0
#: The paper's loss families and ablations (docs/fidelity.md, "Loss families").
LOSS_FAMILIES: dict[str, dict[str, Any]] = {
    "regularizer-free": {},
    "transforms": {"transforms": True},
    "fourier": {"parameterization": "fourier"},
    "penalties": {
        "representation_weight": _PAPER_PENALTY_REP,
        "penalties": (("tv", 5e-4), ("blur", 5e-4), ("l1", 5e-5)),
    },
    "penalties-tv": {"representation_weight": _PAPER_PENALTY_REP, "penalties": (("tv", 5e-4),)},
    "penalties-blur": {"representation_weight": _PAPER_PENALTY_REP, "penalties": (("blur", 5e-4),)},
    "penalties-l1": {"representation_weight": _PAPER_PENALTY_REP, "penalties": (("l1", 5e-5),)},
    "penalties-tv-l6": {
        "representation_weight": _PAPER_PENALTY_REP,
        "penalties": (("tv", 5e-4), ("l6", 1.0)),
    },
    "adversarial": {"adversarial": True},
}


def comparison_loss(losses: Sequence[str]) -> str:
    """The loss family whose IRIs compare models: regularizer-free when it is among ``losses``.

    The paper compares models with regularizer-free IRIs, because the other families decide
    the conclusion themselves (human-leaning priors make every model look aligned, the
    adversarial loss every model unaligned).

    >>> comparison_loss(["transforms", "regularizer-free"])
    'regularizer-free'
    >>> comparison_loss(["transforms", "fourier"])
    'transforms'
    """
    return "regularizer-free" if "regularizer-free" in losses else losses[0]


@dataclass(frozen=True)
class Objective:
    """Layers matched by one inversion, with weights: ``layer4`` or ``0.5*layer3+layer4``."""

    terms: tuple[tuple[str, float], ...]

    @property
    def name(self) -> str:
        return "+".join(name if w == 1.0 else f"{w:g}*{name}" for name, w in self.terms)

    @property
    def layers(self) -> list[str]:
        return [name for name, _ in self.terms]

    @classmethod
    def parse(cls, spec: str | Mapping[str, float]) -> Objective:
        if isinstance(spec, Mapping):
            terms = tuple((str(k), float(v)) for k, v in spec.items())
        else:
            parts: list[tuple[str, float]] = []
            for part in spec.split("+"):
                weight, star, name = part.strip().rpartition("*")
                try:
                    w = float(weight) if star else 1.0
                except ValueError:
                    raise ConfigError(
                        f"Bad layer term {part!r}; write 'LAYER' or 'WEIGHT*LAYER'."
                    ) from None
                parts.append((name.strip(), w))
            terms = tuple(parts)
        if not terms or any(not name for name, _ in terms):
            raise ConfigError(f"Bad layer objective {spec!r}; name at least one layer.")
        for name, w in terms:
            check_float("Objective", f"weight of {name}", w, low=0.0, low_open=True)
        return cls(terms)


def parse_objectives(
    layers: str | Mapping[str, float] | Sequence[str | Mapping[str, float]],
) -> list[Objective]:
    """Each item is inverted separately; an item may combine layers (``0.5*layer3+layer4``)."""
    items = [layers] if isinstance(layers, (str, Mapping)) else list(layers)
    if not items:
        raise ConfigError("No layers given; use for example layers=['penultimate'].")
    return [Objective.parse(item) for item in items]


@dataclass(frozen=True)
class Preset:
    """A named set of optimizer settings, with the seed types it is meant for.

    Attributes:
        name: how the CLI, study specs and manifests refer to it.
        settings: :class:`InversionConfig` fields it fixes.
        seeds: the seed types it starts from unless told otherwise.
        about: one line on what it is and why.
    """

    name: str
    settings: Mapping[str, Any]
    seeds: str
    about: str


#: The loop's fields a preset fixes (every other field keeps its own default).
PRESET_FIELDS = (
    "parameterization",
    "optimizer",
    "lr",
    "schedule",
    "steps",
    "fake_relu",
    "share_seeds",
    "clamp_seeds",
)

#: ``paper`` is the authors' loop (docs/fidelity.md). ``default`` is kept by the convergence
#: study in ``benchmarks/convergence.py``: its saved IRIs pass the validity gate from every seed
#: type on every model of the digits zoo, where the paper's constant step leaves them near the
#: threshold on two models (see benchmarks/README.md).
PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper",
        {
            "parameterization": "pixel",
            "optimizer": "normalized-gd",
            "lr": 1.0,
            "schedule": "constant",
            "steps": 5000,
            "fake_relu": True,
            "share_seeds": True,
            "clamp_seeds": False,
        },
        "super-noise",
        "the authors' loop: clamped pixels, normalized gradient steps of 1.0, 5000 steps, "
        "fake ReLU, one raw noise seed shared by all targets",
    ),
    "default": Preset(
        "default",
        {
            "parameterization": "sigmoid",
            "optimizer": "adam",
            "lr": 0.1,
            "schedule": "cosine",
            "steps": 2000,
            "fake_relu": False,
            "share_seeds": False,
            "clamp_seeds": True,
        },
        "super-noise,image",
        "sigmoid pixels, Adam 0.1 with cosine decay, 2000 steps: reaches the validity gate "
        "from noise and image seeds",
    ),
}
_DEFAULT = PRESETS["default"].settings


@dataclass(frozen=True)
class InversionConfig:
    """How to invert: validated on construction; every field is recorded in the manifest.

    The defaults are the ``default`` preset (:data:`PRESETS`); :meth:`from_preset` starts
    from any preset, ``InversionConfig.from_preset("paper")`` for the authors' exact loop.

    Each field's help is in its metadata (``percalign._settings``): ``percalign invert
    --help``, ``[inversion]`` of ``docs/study.md`` and this class all show the same text.
    """

    steps: int = setting(
        _DEFAULT["steps"], "Gradient steps per image (the paper: 5000).", shown="the preset's"
    )
    optimizer: str = setting(
        _DEFAULT["optimizer"],
        "`normalized-gd` (the paper's), `adam` or `sgd` (with momentum).",
        shown="the preset's",
    )
    lr: float | None = setting(
        None,
        "Step size. None takes the default of the optimizer and parameterization "
        "(`DEFAULT_LR`: Adam on sigmoid pixels 0.1, the default preset's).",
        shown="the preset's, or the optimizer's default when `optimizer` is set",
    )
    schedule: str = setting(
        _DEFAULT["schedule"],
        "`constant`, `step` (multiply by `decay_factor` every `decay_every` steps) or `cosine`.",
        shown="the preset's",
    )
    decay_every: int = setting(1000, "Steps between decays of the `step` schedule.")
    decay_factor: float = setting(0.1, "Factor of each decay of the `step` schedule, in (0, 1].")
    momentum: float = setting(0.9, "SGD momentum.")
    parameterization: str = setting(
        _DEFAULT["parameterization"],
        "`pixel` (clamped to [0, 1] after every step, the paper's) or `sigmoid` (pixels = "
        "sigmoid(z), z optimized; cannot saturate; seeds enter clamped into (0.001, 0.999)). "
        "Loss families with their own parameterization (`fourier`) override it. A "
        "reparameterization, not a prior: the loss is the same.",
        shown="the preset's",
    )
    loss: str = setting(
        "regularizer-free",
        "Loss family (`regularizer-free`, `transforms`, `fourier`, `penalties`, "
        "`penalties-tv`, `penalties-blur`, `penalties-l1`, `penalties-tv-l6`, `adversarial`), "
        "or several joined by `+`.",
    )
    p: float = setting(2.0, "The norm of the relative representation distance (the paper: 2).")
    adversary: str = setting(
        "lpips-alex",
        "The judge whose distance the `adversarial` loss subtracts (any differentiable judge: "
        "`lpips-alex`, the paper's, `ssim`, `ms-ssim`, `pixel`, `model:NAME`). It is held out "
        "from judging the adversarial runs.",
    )
    adversarial_lambda: float | str | None = setting(
        None,
        "Weight of the adversary's distance in the adversarial loss, or `auto` for "
        "mean(L)/mean(D) at the seeds over all images of an objective.",
        shown='10 for `lpips-alex`, else "auto"',
    )
    fake_relu: bool = setting(
        _DEFAULT["fake_relu"],
        "The final ReLU before the read layer passes gradients backward unchanged (Engstrom "
        "et al.; on in every run of the paper's authors): the last ReLU before each layer, or "
        "for a model whose spec names fake-ReLU blocks (ImageNet ResNets), the final ReLU of "
        "every one of those blocks.",
        shown="the preset's",
    )
    fourier_start: str = setting(
        "spectrum",
        "How the `fourier` family starts from a noise seed: `spectrum` (the authors': "
        "super-noise is N(0, 1) and light-noise 0.01 x N(0, 1) noise in the spectrum itself, a "
        "near mid-grey image) or `image` (the spectrum of the pixel-noise seed, whose clamped "
        "pixels start saturated). Other seed types always start at their image's spectrum.",
    )
    fourier_clamp: bool = setting(
        False,
        "Clamp the `fourier` family's spectrum to [0, 1] after every step, as the authors' code "
        "did (a defect: it removes every negative coefficient); off by default.",
    )
    normalize_input: bool = setting(
        True,
        "Clamp and normalize the optimized image before the network. The paper's authors' "
        "adversarial-loss runs fed it the raw pixels (their targets normalized), a defect of "
        "their code; false reproduces it. Targets and reported distances are normalized "
        "either way.",
    )
    token_pool: str | None = setting(
        None,
        "`cls`, `mean` or `all` for models whose layers output tokens.",
        shown="the model's",
    )
    early_stop: float | None = setting(
        None,
        "Stop an image once its representation distance is at most this (the paper runs "
        "every step).",
    )
    stop_at_valid: float | None = setting(
        None,
        "Stop an image once its distance is below the validity threshold times this margin, "
        "in (0, 1] (needs the validity null).",
        flag="--stop-at",
    )
    batch_size: int = setting(32, "Images optimized together.")
    seed: int = setting(0, "Seeds every random choice (noise seeds, natural seeds, transforms).")
    share_seeds: bool = setting(
        _DEFAULT["share_seeds"],
        "One noise image per seed type shared by all targets (as the authors' code did) "
        "instead of one per target.",
        shown="the preset's",
    )
    clamp_seeds: bool = setting(
        _DEFAULT["clamp_seeds"],
        "Start from the noise seed clamped to [0, 1] and rounded to 8 bits, the seed that is "
        "saved and shown. Off, the loop starts from the raw noise (super-noise, light-noise), "
        "which the model sees through its input clamp and the first step's projection brings "
        "into [0, 1] (the authors' loop); the saved seed is the clamped, rounded noise either "
        "way.",
        shown="the preset's",
    )
    record_every: int | None = setting(
        None,
        "Steps between points of the recorded loss curves; each point costs a device "
        "synchronization.",
        shown="steps // 100, at least 10",
    )
    precision: str = setting(
        "fp32", "`fp32` or `bf16` (autocast of the model's forward pass; for GPUs)."
    )
    channels_last: bool = setting(
        False,
        "Run a channels-last copy of the model (faster convolutions on GPUs, and on CPUs for "
        "small CNNs); the caller's model is left as it is.",
    )
    compile: bool = setting(
        False,
        "`torch.compile` the optimized forward and backward (the network traced whole and "
        "truncated after the objective's layers); takes seconds to minutes per batch shape, "
        "worth it for long GPU runs.",
    )
    fold_batchnorm: bool = setting(
        True,
        "Step a copy of the network whose eval-mode batch norms are folded into the "
        "convolutions before them: the same function up to float rounding, about 0.7x the CPU "
        "time per step of a small CNN; reported distances use the network as given.",
    )
    loss_spec: LossSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = "InversionConfig"
        check_int(owner, "steps", self.steps, low=1)
        check_choice(owner, "optimizer", self.optimizer, STEP_RULES)
        if self.lr is not None:
            check_float(owner, "lr", self.lr, low=0.0, low_open=True)
        check_choice(owner, "schedule", self.schedule, SCHEDULES)
        check_int(owner, "decay_every", self.decay_every, low=1)
        check_float(owner, "decay_factor", self.decay_factor, low=0.0, high=1.0, low_open=True)
        check_float(owner, "momentum", self.momentum, low=0.0, high=1.0)
        if self.parameterization not in PIXEL_PARAMETERIZATIONS:
            raise unknown_name(
                "parameterization",
                str(self.parameterization),
                PIXEL_PARAMETERIZATIONS,
                hint="(The Fourier image is the loss family 'fourier'.)",
            )
        check_float(owner, "p", self.p, low=1.0)
        if self.adversarial_lambda not in (None, "auto"):
            check_float(owner, "adversarial_lambda", self.adversarial_lambda, low=0.0)
        if self.early_stop is not None:
            check_float(owner, "early_stop", self.early_stop, low=0.0)
        if self.stop_at_valid is not None:
            check_float(
                owner, "stop_at_valid", self.stop_at_valid, low=0.0, high=1.0, low_open=True
            )
        check_int(owner, "batch_size", self.batch_size, low=1)
        check_int(owner, "seed", self.seed, low=0)
        if self.record_every is not None:
            check_int(owner, "record_every", self.record_every, low=1)
        check_choice(owner, "precision", self.precision, PRECISIONS)
        check_choice(owner, "fourier_start", self.fourier_start, FOURIER_STARTS)
        object.__setattr__(self, "loss_spec", LossSpec.parse(self.loss))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> InversionConfig:
        """The preset ``name``'s settings (:data:`PRESETS`), then ``overrides`` on top.

        >>> InversionConfig.from_preset("paper").optimizer
        'normalized-gd'
        >>> InversionConfig.from_preset("paper", steps=100).preset is None
        True
        """
        if name not in PRESETS:
            raise unknown_name("inversion preset", name, PRESETS)
        return cls(**{**PRESETS[name].settings, **overrides})

    @classmethod
    def from_options(cls, preset: str, **options: Any) -> InversionConfig:
        """The preset, then the optimizer ``options`` that are set (not None), then the rest.

        As the CLI and study specs use it: an unset option keeps the preset's value, and an
        optimizer named without a step size takes that optimizer's own default step size
        rather than the preset's.

        >>> InversionConfig.from_options("paper", optimizer="adam", steps=None).resolved_lr
        0.02
        """
        given = {k: options.pop(k) for k in PRESET_FIELDS if k in options}
        overrides = {k: v for k, v in given.items() if v is not None}
        if "optimizer" in overrides and "lr" not in overrides:
            overrides["lr"] = None
        return cls.from_preset(preset, **overrides, **options)

    @property
    def preset(self) -> str | None:
        """The name of the preset whose every setting this config has, else None."""
        mine = {k: getattr(self, k) for k in PRESET_FIELDS}
        mine["lr"] = self.resolved_lr
        for name, preset in PRESETS.items():
            if all(mine[k] == v for k, v in preset.settings.items()):
                return name
        return None

    @property
    def resolved_parameterization(self) -> str:
        """The parameterization used: the loss family's own (``fourier``), else the field."""
        if self.loss_spec.parameterization != "pixel":
            return self.loss_spec.parameterization
        return self.parameterization

    @property
    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        kind = "sigmoid" if self.resolved_parameterization == "sigmoid" else "pixel"
        return DEFAULT_LR[(self.optimizer, kind)]

    @property
    def resolved_adversarial_lambda(self) -> float | str:
        if self.adversarial_lambda is not None:
            return self.adversarial_lambda
        return 10.0 if self.adversary == "lpips-alex" else "auto"

    @property
    def resolved_record_every(self) -> int:
        return self.record_every or max(10, self.steps // 100)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, resolved (the learning rate, the loss family's weights, the preset)."""
        out = {k: v for k, v in asdict(self).items() if k != "loss_spec"}
        out["lr"] = self.resolved_lr
        out["record_every"] = self.resolved_record_every
        out["adversarial_lambda"] = self.resolved_adversarial_lambda
        out["preset"] = self.preset
        out["parameterization"] = self.resolved_parameterization
        out["parameterization_eps"] = PARAMETERIZATIONS[self.resolved_parameterization].eps
        out["loss_spec"] = asdict(self.loss_spec)
        return out
