"""The inversion loop: find images a model represents like its targets (IRIs).

Pure compute: no files, no printing; progress goes to a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from percalign._random import stream
from percalign.errors import ConfigError, InputShapeError, NumericalError
from percalign.inversion.acceleration import fast_features, model_for_run
from percalign.inversion.config import InversionConfig, Objective, parse_objectives
from percalign.inversion.objective import feature_norm, relative_distance
from percalign.inversion.parameterizations import make_param, spectrum_noise_image
from percalign.inversion.penalties import get_penalty
from percalign.inversion.seeds import SeedSpec, make_seed, parse_seeds
from percalign.inversion.steps import learning_rate, make_rule
from percalign.inversion.transforms import random_affine, sample_transform_draws
from percalign.models.extractor import FeatureExtractor
from percalign.models.model import Model

__all__ = ["InversionResult", "Progress", "invert", "quantize"]

Perceptual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Noise seeds the ``fourier`` family draws in the spectrum (``fourier_start='spectrum'``),
#: with their standard deviation there (the authors').
_SPECTRUM_SD = {"super-noise": 1.0, "light-noise": 0.01}
#: Seeds that ``clamp_seeds=False`` starts from unclamped (their values leave [0, 1]).
_RAW_NOISE = ("super-noise", "light-noise")
_Targets = dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives, every ``record_every`` steps and at batch ends."""

    steps_done: int
    steps_total: int
    batch: int
    batches: int
    mean_distance: float


@dataclass
class InversionResult:
    """IRIs and everything needed to trace them. M = targets x seeds x objectives.

    Attributes:
        iris: (M, C, H, W) in [0, 1], on the 8-bit grid (exactly what a PNG stores).
        seeds: (M, C, H, W) the seed images as saved and shown: clamped to [0, 1] and rounded
            to 8 bits (``config.clamp_seeds`` off, the loop started from the raw noise).
        targets: (T, C, H, W) the target images.
        target_index: (M,) which target each IRI belongs to.
        seed_kind, seed_copy, seed_source: seed type, which copy of it, and for natural-image
            seeds the index of the image used (else None).
        objective: the layer objective of each IRI (``penultimate``, ``0.5*layer3+layer4``).
        distance: (M,) relative representation distance of the 8-bit IRI (weighted over layers).
        layer_distance: per layer name, (M,) distances (NaN where an IRI's objective lacks it).
        seed_distance: (M,) the same distance for the seed image, before optimization.
        steps_taken: (M,) steps run per image (fewer than ``config.steps`` after an early stop).
        first_valid_step: (M,) the first step at which the iterate's distance was below its
            objective's validity threshold (as optimized, before 8-bit rounding); -1 if never,
            or if no threshold was given. Under random transforms the image is checked (and
            stopped) only at the ``curve_steps``.
        at_zero, at_one: (M,) share of the 8-bit IRI's values that are exactly 0 and 1 (a
            saturated image has many; a stalled clamped inversion shows it first).
        curve_steps: steps at which the loss curves were recorded.
        curves: (M, K) representation distance at those steps.
        config: the settings used.
    """

    iris: torch.Tensor
    seeds: torch.Tensor
    targets: torch.Tensor
    target_index: torch.Tensor
    seed_kind: list[str]
    seed_copy: list[int]
    seed_source: list[int | None]
    objective: list[str]
    distance: torch.Tensor
    layer_distance: dict[str, torch.Tensor]
    seed_distance: torch.Tensor
    steps_taken: torch.Tensor
    first_valid_step: torch.Tensor
    at_zero: torch.Tensor
    at_one: torch.Tensor
    curve_steps: list[int]
    curves: torch.Tensor
    config: InversionConfig
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seed_kind)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] images to the 8-bit grid k/255, as saving to PNG does."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


@dataclass(frozen=True)
class _Job:
    target: int
    kind: str
    copy: int
    objective: int


class _ObjectiveState:
    """Extractor and target representations for one objective, shared by its batches.

    Target features are kept in float32 for the reported distances and, under bf16, also as
    computed in bf16 for the optimized loss, so that each is compared like with like.
    """

    def __init__(
        self,
        model: Model,
        run_model: Model,
        objective: Objective,
        config: InversionConfig,
        targets: torch.Tensor,
    ) -> None:
        self.objective = objective

        def extractor(m: Model, normalize: bool = True) -> FeatureExtractor:
            return FeatureExtractor(
                m,
                objective.layers,
                fake_relu=config.fake_relu,
                token_pool=config.token_pool,
                normalize=normalize,
            )

        # the optimized image may reach the network unnormalized (the authors' adversarial
        # runs); the targets, and every reported distance, always go through its normalization
        self.extractor = extractor(model)
        optimized = extractor(run_model, config.normalize_input)
        self.config = config
        self._fast = fast_features(
            optimized, config.precision, config.channels_last, config.compile
        )
        with torch.no_grad():
            precise = self.extractor(targets)
            fast = precise
            if run_model is not model or config.precision != "fp32":
                # eager: one compiled graph fewer, same arithmetic as the optimized loss
                on_targets = optimized if config.normalize_input else extractor(run_model)
                fast = fast_features(on_targets, config.precision, config.channels_last, False)(
                    targets
                )
        self.targets = {True: self._prepare(precise, model), False: self._prepare(fast, model)}

    def _prepare(
        self, feats: dict[str, torch.Tensor], model: Model
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for name, f in feats.items():
            f = f.float().detach()
            norm = feature_norm(f, self.config.p)
            zero = torch.nonzero(norm == 0).flatten().tolist()
            if zero:
                raise InputShapeError(
                    f"Targets {zero} have an all-zero representation at layer {name!r} of "
                    f"{model.spec.name!r}, so the relative distance is undefined; choose another "
                    "layer or other targets."
                )
            out[name] = (f, norm)
        return out

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features as the optimization sees them (channels-last, bf16, compiled if set)."""
        self.extractor.model.check_input(x)
        return self._fast(x)

    def rows(self, target_rows: torch.Tensor, precise: bool = False) -> _Targets:
        """The target features and norms of one batch, looked up once."""
        return {
            name: (f[target_rows], norm[target_rows])
            for name, (f, norm) in self.targets[precise].items()
        }

    def distances(
        self, x: torch.Tensor, targets: _Targets, precise: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted relative distance (N,) of ``x`` to ``targets``, and per layer.

        ``precise`` computes in float32 (for reported distances); otherwise as optimized.
        """
        feats = self.extractor(x) if precise else self.features(x)
        per_layer = {
            name: relative_distance(feats[name], *targets[name], self.config.p)
            for name in self.objective.layers
        }
        terms = self.objective.terms
        if len(terms) == 1 and terms[0][1] == 1.0:
            return per_layer[terms[0][0]], per_layer
        total = torch.stack([w * per_layer[name] for name, w in terms]).sum(dim=0)
        return total, per_layer


def _check_finite(values: torch.Tensor, step: int, what: str) -> None:
    if not torch.isfinite(values).all():
        bad = torch.nonzero(~torch.isfinite(values)).flatten().tolist()
        raise NumericalError(
            f"The {what} became NaN or infinite by step {step} (batch rows {bad[:5]}); lower "
            "the learning rate, use precision='fp32', or check the model for unstable layers."
        )


def invert(
    model: Model,
    targets: torch.Tensor,
    *,
    layers: str | Sequence[str] = "penultimate",
    seeds: str | SeedSpec | Sequence[str | SeedSpec] = "super-noise",
    config: InversionConfig | None = None,
    labels: torch.Tensor | None = None,
    seed_images: torch.Tensor | None = None,
    seed_labels: torch.Tensor | None = None,
    perceptual: Perceptual | None = None,
    progress: Callable[[Progress], None] | None = None,
    only_targets: Sequence[int] | None = None,
    only_objectives: Sequence[int] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> InversionResult:
    """Invert ``model``'s representation of each target from each seed, for each objective.

    Args:
        model: the model (its device is used for everything).
        targets: (T, C, H, W) in [0, 1], C the model's channel count. Targets and seeds are
            rounded to 8-bit levels first, so that what is inverted is what is saved and shown.
        layers: one objective or several, each inverted separately; an objective is a layer
            name or a weighted sum such as ``"0.5*layer3+layer4"``.
        seeds: seed types, as ``"super-noise,image:2"`` or :class:`SeedSpec` s.
        config: optimizer and loss settings (default: ``InversionConfig()``, the ``default``
            preset).
        labels: (T,) labels of the targets; ``image`` seeds then prefer another class.
        seed_images: pool for ``image`` seeds (default: the other targets).
        seed_labels: labels of ``seed_images``, if known.
        perceptual: differentiable distance (N,) between image batches in [0, 1], used by the
            adversarial loss (default: the judge ``config.adversary``).
        progress: called with a :class:`Progress` as the run advances.
        only_targets, only_objectives: optimize only the IRIs of these target indices and
            objective indices (positions in ``targets`` and ``layers``; default: all), for
            splitting one call into parts that run apart. Everything else is done as in the
            whole call (seeds drawn with the same keys from the same pool, seed distances
            and the adversarial weight over all targets, the same batches), so each returned
            row is bitwise the row of the whole call. A batch that mixes chosen and other
            IRIs is optimized whole and the others dropped: parts whose IRIs per objective
            are a multiple of ``config.batch_size`` waste nothing.
        thresholds: the validity threshold of each objective, by its name (see
            :func:`~percalign.inversion.null_distribution`): the step at which each IRI first
            passes is recorded, and ``config.stop_at_valid`` stops images there.

    Returns:
        An :class:`InversionResult` whose rows are ordered by objective, target, seed type
        and copy (only the chosen ones; ``targets`` always holds every target). Each IRI is
        the best iterate by loss, except with random transforms, whose loss is measured on a
        random view: there it is the last iterate.
    """
    config = config or InversionConfig()
    model.check_input(targets)
    objectives = parse_objectives(layers)
    seed_specs = parse_seeds(seeds)
    device = model.device
    targets = targets.detach().to(device=device, dtype=torch.float32)
    if targets.min() < 0 or targets.max() > 1:
        raise InputShapeError("Target images must lie in [0, 1]; rescale them first.")
    targets = quantize(targets)  # invert the target exactly as it is saved and shown
    if labels is not None and len(labels) != len(targets):
        raise InputShapeError(f"Got {len(labels)} labels for {len(targets)} targets.")
    if seed_images is None:
        pool, pool_labels = targets.cpu(), labels
    else:
        model.check_input(seed_images)
        pool, pool_labels = seed_images.detach().float().cpu(), seed_labels
        if pool_labels is not None and len(pool_labels) != len(pool):
            raise InputShapeError(f"Got {len(pool_labels)} seed labels for {len(pool)} images.")
    thresholds = dict(thresholds or {})
    missing = [o.name for o in objectives if o.name not in thresholds]
    if config.stop_at_valid is not None and missing:
        raise ConfigError(
            f"stop_at_valid needs the validity threshold of objective {missing[0]!r}, and none "
            "was given; pass thresholds= (from null_distribution), or give the CLI natural "
            "images for the validity null (--null-images > 1)."
        )
    if config.loss_spec.adversarial and perceptual is None:
        from percalign.judges.registry import get_adversary

        perceptual = get_adversary(config.adversary, device)
    # the network the steps run: a copy (folded, channels-last) or the caller's, unchanged
    run_model = model_for_run(
        model,
        config.channels_last,
        fold=config.fold_batchnorm,
        keep=[model.resolve_layer(name).path for obj in objectives for name in obj.layers],
    )

    jobs = [
        _Job(t, s.kind, c, o)
        for o in range(len(objectives))
        for t in range(len(targets))
        for s in seed_specs
        for c in range(s.count)
    ]
    chosen = _chosen(jobs, only_targets, len(targets), only_objectives, len(objectives))
    seed_list: list[torch.Tensor] = []
    seed_sources: list[int | None] = []
    fourier = config.resolved_parameterization == "fourier"
    spectrum_noise = fourier and config.fourier_start == "spectrum"
    for job in jobs:
        shared = config.share_seeds and job.kind != "image"
        key = (
            "seed",
            config.seed,
            job.kind,
            None if shared else job.target,
            None if job.kind == "image" else job.copy,
        )
        shape = (targets.shape[1], targets.shape[2], targets.shape[3])
        if job.kind in _SPECTRUM_SD and spectrum_noise:
            seed_list.append(spectrum_noise_image(shape, _SPECTRUM_SD[job.kind], stream(*key)))
            seed_sources.append(None)
            continue
        img, src = make_seed(
            job.kind,
            shape,
            stream(*key),
            job.target,
            pool=pool,
            pool_labels=pool_labels,
            exclude_self=seed_images is None,
            copy=job.copy,
            target_label=None if labels is None else int(labels[job.target]),
        )
        seed_list.append(img)
        seed_sources.append(src)
    raw_seeds = torch.stack(seed_list).to(device)
    all_seeds = quantize(raw_seeds)  # the seeds as saved and shown
    # where the optimization starts: the shown seed, or for noise seeds the raw noise (the
    # authors' loop; natural-image and constant seeds start as shown either way)
    starts = all_seeds
    if not config.clamp_seeds:
        noise = torch.tensor([j.kind in _RAW_NOISE for j in jobs], device=device)
        starts = torch.where(noise.view(-1, 1, 1, 1), raw_seeds, all_seeds)

    batches = [
        (o, index[s : s + config.batch_size])
        for o in range(len(objectives))
        for index in [[i for i, j in enumerate(jobs) if j.objective == o]]
        for s in range(0, len(index), config.batch_size)
    ]
    to_run = sum(1 for _, chunk in batches if any(chosen[i] for i in chunk))
    runner = _Runner(config, to_run, progress, perceptual)
    rows: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("iris", "dist", "steps", "first_valid", "curves")
    }
    layer_rows: dict[str, list[torch.Tensor]] = {}
    seed_dist = torch.empty(len(jobs))
    lambdas: dict[str, float] = {}
    all_layers = list(dict.fromkeys(n for obj in objectives for n in obj.layers))
    for o, objective in enumerate(objectives):
        mine = [chunk for oo, chunk in batches if oo == o]
        if not any(chosen[i] for chunk in mine for i in chunk):
            continue
        state = _ObjectiveState(model, run_model, objective, config, targets)
        lam = runner.first_step_lambda(state, targets, jobs, all_seeds, mine, seed_dist)
        if lam is not None:
            lambdas[objective.name] = lam
        for chunk in mine:
            keep = [k for k, i in enumerate(chunk) if chosen[i]]
            if not keep:
                continue
            out = runner.run(
                state,
                targets,
                [jobs[i] for i in chunk],
                starts[chunk],
                lam,
                thresholds.get(objective.name),
            )
            if len(keep) < len(chunk):
                out = _rows(out, torch.tensor(keep))
            for field_name in rows:
                rows[field_name].append(out[field_name])
            for name in all_layers:
                value = out["layers"].get(name, torch.full((len(keep),), float("nan")))
                layer_rows.setdefault(name, []).append(value)

    picked = [i for i in range(len(jobs)) if chosen[i]]
    kept = [jobs[i] for i in picked]
    iris = torch.cat(rows["iris"])
    return InversionResult(
        iris=iris,
        seeds=all_seeds.cpu() if len(kept) == len(jobs) else all_seeds[picked].cpu(),
        targets=targets.cpu(),
        target_index=torch.tensor([j.target for j in kept]),
        seed_kind=[j.kind for j in kept],
        seed_copy=[j.copy for j in kept],
        seed_source=[seed_sources[i] for i in picked],
        objective=[objectives[j.objective].name for j in kept],
        distance=torch.cat(rows["dist"]),
        seed_distance=seed_dist if len(kept) == len(jobs) else seed_dist[picked],
        layer_distance={k: torch.cat(v) for k, v in layer_rows.items()},
        steps_taken=torch.cat(rows["steps"]),
        first_valid_step=torch.cat(rows["first_valid"]),
        at_zero=(iris == 0).flatten(1).float().mean(1),
        at_one=(iris == 1).flatten(1).float().mean(1),
        curve_steps=runner.curve_steps,
        curves=torch.cat(rows["curves"]),
        config=config,
        extra={"adversarial_lambda": lambdas} if lambdas else {},
    )


def _subset(name: str, given: Sequence[int] | None, n: int) -> set[int] | None:
    """The indices ``given`` as a set, checked against ``range(n)``."""
    if given is None:
        return None
    chosen = set()
    for i in given:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise InputShapeError(
                f"{name} must hold indices in [0, {n - 1}]; got {i!r}. Pass positions in the "
                "call's targets and layers."
            )
        chosen.add(i)
    if not chosen:
        raise InputShapeError(f"{name} is empty; pass None to optimize every IRI.")
    return chosen


def _chosen(
    jobs: list[_Job],
    only_targets: Sequence[int] | None,
    n_targets: int,
    only_objectives: Sequence[int] | None,
    n_objectives: int,
) -> list[bool]:
    """For each job, whether the caller asked for it."""
    targets = _subset("only_targets", only_targets, n_targets)
    objectives = _subset("only_objectives", only_objectives, n_objectives)
    return [
        (targets is None or j.target in targets)
        and (objectives is None or j.objective in objectives)
        for j in jobs
    ]


def _rows(out: dict[str, Any], keep: torch.Tensor) -> dict[str, Any]:
    """The rows ``keep`` of one batch's output."""
    picked = {k: v[keep] for k, v in out.items() if k != "layers"}
    return {**picked, "layers": {k: v[keep] for k, v in out["layers"].items()}}


def _stop_distance(config: InversionConfig, threshold: float | None) -> float | None:
    """The distance at or below which an image stops: the tighter of the two stop rules."""
    stops = [config.early_stop] if config.early_stop is not None else []
    if config.stop_at_valid is not None and threshold is not None:
        # strictly below the threshold: the gate is "distance < threshold"
        stops.append(float(np.nextafter(threshold * config.stop_at_valid, -np.inf)))
    return min(stops) if stops else None


class _Runner:
    """Optimizes one batch at a time; keeps the progress count across batches."""

    def __init__(
        self,
        config: InversionConfig,
        n_batches: int,
        progress: Callable[[Progress], None] | None,
        perceptual: Perceptual | None,
    ):
        self.config = config
        self.n_batches = n_batches
        self.batch_no = 0
        self.progress = progress
        self.perceptual = perceptual
        every = config.resolved_record_every
        self.curve_steps = sorted({*range(0, config.steps, every), config.steps})
        self._curve_set = set(self.curve_steps)
        self.penalties = [(get_penalty(n), w) for n, w in config.loss_spec.penalties]

    def first_step_lambda(
        self,
        state: _ObjectiveState,
        targets: torch.Tensor,
        jobs: list[_Job],
        seeds: torch.Tensor,
        batches: list[list[int]],
        seed_dist: torch.Tensor,
    ) -> float | None:
        """Fill ``seed_dist`` for the objective's jobs; return the adversarial weight to use.

        With ``adversarial_lambda='auto'`` it is mean(L) / mean(LPIPS) at the seeds, over all
        of the objective's images (not per batch, so batching does not change results).
        """
        cfg = self.config
        auto = cfg.loss_spec.adversarial and cfg.resolved_adversarial_lambda == "auto"
        rep_sum = lp_sum = 0.0
        with torch.no_grad():
            for chunk in batches:
                rows = torch.tensor([jobs[i].target for i in chunk], device=seeds.device)
                dist, _ = state.distances(seeds[chunk], state.rows(rows, True), precise=True)
                seed_dist[chunk] = dist.cpu()
                if auto and self.perceptual is not None:
                    rep_sum += float(state.distances(seeds[chunk], state.rows(rows))[0].sum())
                    lp_sum += float(self.perceptual(seeds[chunk], targets[rows]).sum())
        if not cfg.loss_spec.adversarial:
            return None
        if auto:
            return rep_sum / max(lp_sum, 1e-12)
        return float(cfg.resolved_adversarial_lambda)

    def run(
        self,
        state: _ObjectiveState,
        targets: torch.Tensor,
        jobs: list[_Job],
        seeds: torch.Tensor,
        lam: float | None,
        threshold: float | None,
    ) -> dict[str, Any]:
        cfg, spec = self.config, self.config.loss_spec
        n = len(jobs)
        rows = torch.tensor([j.target for j in jobs], device=seeds.device)
        batch_targets = targets[rows]
        target_feats = state.rows(rows)
        param = make_param(cfg.resolved_parameterization, seeds, cfg.fourier_clamp)
        stop_at = _stop_distance(cfg, threshold)
        rule = make_rule(cfg.optimizer, param.params, cfg.momentum)
        draws = None
        if spec.transforms:
            draws = torch.stack(
                [
                    sample_transform_draws(
                        stream("transforms", cfg.seed, j.target, j.kind, j.copy, j.objective),
                        cfg.steps,
                    )
                    for j in jobs
                ],
                dim=1,
            )  # (steps, N, 6)
        # With random transforms the loss is noisy, so "best" would be luck: keep the last.
        keep_best = draws is None
        device = seeds.device
        best = torch.full((n,), float("inf"), device=device)
        best_image = seeds.clone()
        steps_taken = torch.full((n,), cfg.steps, dtype=torch.long)
        first_valid = torch.full((n,), -1, dtype=torch.long, device=device)
        last_rep = torch.zeros(n, device=device)
        # The batch rows still optimized: once at most half of them are active (the others
        # stopped), the batch shrinks to the active ones. Every rule is per image, so this
        # changes no result, only the work.
        live = torch.arange(n, device=device)
        active = torch.ones(n, dtype=torch.bool, device=device)
        live_targets = batch_targets
        curve = []
        for step in range(cfg.steps + 1):
            image = param.image()
            if draws is None:
                seen = image
            else:
                seen = random_affine(image, draws[min(step, cfg.steps - 1)][live])
            rep, _ = state.distances(seen, target_feats)
            w = spec.representation_weight
            total = rep if w == 1.0 else w * rep
            for fn, weight in self.penalties:
                total = total + weight * fn(image)
            if lam is not None and self.perceptual is not None:
                total = total - lam * self.perceptual(image, live_targets)
            with torch.no_grad():
                was = best[live]
                improved = ((total < was) if keep_best else torch.ones_like(active)) & active
                best[live] = torch.where(improved, total.detach(), was)
                picked = live[improved]
                best_image[picked] = image.detach()[improved]
                last_rep[live] = rep.detach().float()
            if step in self._curve_set:
                _check_finite(total.detach(), step, "loss")
                curve.append(last_rep.cpu().clone())
                self._report(step, rep)
            # Validity is a property of the image itself, not of a random view of it; under
            # transforms that costs a forward pass of its own, so it is checked at the curve's
            # points only (every record_every steps, and the last).
            plain = rep.detach()
            checked = draws is None or step in self._curve_set
            if draws is not None and checked and (threshold is not None or stop_at is not None):
                with torch.no_grad():
                    plain = state.distances(image.detach(), target_feats)[0]
            if threshold is not None and checked:
                newly = (first_valid[live] < 0) & (plain < threshold)
                first_valid[live[newly]] = step
            if step == cfg.steps:
                break  # the last iterate has been scored; no update after it
            if stop_at is not None and checked:
                done = active & (plain <= stop_at)
                steps_taken[live[done].cpu()] = step
                active &= ~done
                if not active.any():
                    curve.extend(curve[-1:] * (len(self.curve_steps) - len(curve)))
                    break
            (grad,) = torch.autograd.grad(total.sum(), param.params)
            if stop_at is not None and int(active.sum()) * 2 <= len(live):
                keep = torch.nonzero(active).flatten()
                grad, live, active = grad[keep], live[keep], active[keep]
                param.select(keep)
                rule.select(keep)
                target_feats = {k: (f[keep], nrm[keep]) for k, (f, nrm) in target_feats.items()}
                live_targets = live_targets[keep]
            lr = learning_rate(
                cfg.resolved_lr, step, cfg.steps, cfg.schedule, cfg.decay_every, cfg.decay_factor
            )
            with torch.no_grad():
                rule.update(param.params, grad, lr, active)
            param.project()
        self.batch_no += 1
        iris = quantize(best_image)
        with torch.no_grad():
            dist, per_layer = state.distances(iris, state.rows(rows, True), precise=True)
        _check_finite(dist, cfg.steps, "final representation distance")
        return {
            "iris": iris.cpu(),
            "dist": dist.cpu(),
            "steps": steps_taken,
            "first_valid": first_valid.cpu(),
            "curves": torch.stack(curve, dim=1),
            "layers": {k: v.cpu() for k, v in per_layer.items()},
        }

    def _report(self, step: int, rep: torch.Tensor) -> None:
        if self.progress is None:
            return
        self.progress(
            Progress(
                steps_done=self.batch_no * self.config.steps + step,
                steps_total=self.n_batches * self.config.steps,
                batch=self.batch_no,
                batches=self.n_batches,
                mean_distance=float(rep.detach().mean()),
            )
        )
