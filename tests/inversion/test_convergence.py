"""The sigmoid parameterization, presets, convergence diagnostics and stopping at validity."""

import numpy as np
import pytest
import torch

import percalign as pa
from percalign.data import choose, load_images
from percalign.errors import ConfigError
from percalign.inversion import InversionConfig, invert, null_distribution, quantize
from percalign.inversion.parameterizations import SIGMOID_EPS, SigmoidImage, make_param
from percalign.inversion.validity import gate_warning
from percalign.judges.ensemble import Ensemble
from percalign.judges.registry import as_adversary, get_adversary, get_judge


@pytest.mark.parametrize("shape", [(3, 1, 32, 32), (2, 3, 17, 24)])
def test_sigmoid_image_starts_at_the_seed_and_round_trips_the_8bit_grid(shape):
    seed = quantize(torch.rand(shape))
    seed[0, 0, :4] = 0.0  # saturated seed pixels, as super-noise has many
    seed[-1, -1, -4:] = 1.0
    image = SigmoidImage(seed).image().detach()
    assert (image - seed).abs().max() <= SIGMOID_EPS + 1e-6  # within the recorded eps
    torch.testing.assert_close(quantize(image), seed, rtol=0, atol=0)  # exactly, once saved


def test_sigmoid_image_is_in_range_and_passes_gradients_at_the_bounds():
    param = SigmoidImage(torch.tensor([0.0, 1.0, 0.5]).view(1, 1, 1, 3))
    (g,) = torch.autograd.grad(param.image().sum(), param.params)
    assert torch.isfinite(g).all() and (g > 0).all()  # a clamped pixel would have none
    with torch.no_grad():
        param.params.mul_(1e4)
    image = param.image()
    assert image.min() >= 0 and image.max() <= 1


def test_unknown_parameterization_names_close_matches():
    with pytest.raises(pa.errors.UnknownNameError, match="Did you mean 'sigmoid'"):
        make_param("sigmod", torch.rand(1, 1, 4, 4))


@pytest.mark.parametrize("parameterization", ["pixel", "sigmoid"])
def test_batch_equals_items_and_runs_repeat_exactly(digits3, parameterization):
    model = pa.models.load("tiny-resnet")
    targets, labels = digits3[0][:3], digits3[1][:3]
    cfg = dict(parameterization=parameterization, optimizer="adam", steps=8)
    together = invert(
        model,
        targets,
        seeds="super-noise,image",
        labels=labels,
        config=InversionConfig(batch_size=6, **cfg),
    )
    alone = invert(
        model,
        targets,
        seeds="super-noise,image",
        labels=labels,
        config=InversionConfig(batch_size=1, **cfg),
    )
    assert (together.iris - alone.iris).abs().max() <= 1 / 255 + 1e-6
    torch.testing.assert_close(together.distance, alone.distance, rtol=1e-3, atol=1e-3)
    again = invert(
        model,
        targets,
        seeds="super-noise,image",
        labels=labels,
        config=InversionConfig(batch_size=6, **cfg),
    )
    assert torch.equal(together.iris, again.iris)


def _trained_digits_model():
    """A 3-stage CNN of width 8 trained on 800 digits for a few seconds."""
    from percalign.models import from_module
    from percalign.training import TrainConfig, train

    net, meta, _ = train(
        TrainConfig(
            arch="small-cnn",
            width=8,
            epochs=8,
            limit=800,
            lr=5e-3,
            batch_size=64,
            eval_images=32,
            seed=0,
        )
    )
    assert meta["clean_accuracy"] > 0.5  # it learned digits: the diagnosis is about such models
    return from_module(
        net, mean=meta["mean"], std=meta["std"], input_size=32, head="fc", name="digits-cnn-w8"
    )


class _ZeroAtBoundsClamp(torch.autograd.Function):
    """clamp(x, 0, 1) with PyTorch 2.14's gradient: 1 strictly inside the box, 0 on and out."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(0, 1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x < 1)).to(grad.dtype)


@pytest.mark.slow
def test_super_noise_passes_with_both_presets_and_stalls_only_with_a_frozen_clamp(monkeypatch):
    """The paper's loop reaches the gate from super-noise; it stalled only while the input
    clamp stopped the gradient at 0 and 1 (PyTorch 2.14's clamp), which froze every pixel the
    projection put on a bound."""
    model = _trained_digits_model()
    every = load_images("digits", size=32, split="test")
    targets, pool = choose(every, 6, 0), choose(every, 128, 1)
    null = null_distribution(model, pool.images, "penultimate")
    steps = 200

    def run(preset):
        return invert(
            model,
            targets.images,
            seeds="super-noise",
            config=InversionConfig.from_preset(preset, steps=steps),
            thresholds={"penultimate": null.threshold},
        )

    default, paper = run("default"), run("paper")
    assert null.valid(default).mean() >= 5 / 6
    assert null.valid(paper).mean() >= 5 / 6
    assert float((paper.at_zero + paper.at_one).mean()) < 0.2  # few pixels stay on a bound
    passed = paper.first_valid_step[null.valid(paper)]
    assert ((passed >= 0) & (passed <= steps)).all()
    # the same loop with the clamp gradient of PyTorch 2.14: the pixels freeze at the bounds
    monkeypatch.setattr(
        "percalign.models.model.clamp", lambda x, low=0.0, high=1.0: _ZeroAtBoundsClamp.apply(x)
    )
    frozen = run("paper")
    assert null.valid(frozen).mean() <= 1 / 2
    assert float((frozen.at_zero + frozen.at_one).mean()) > 0.5
    assert frozen.distance.median() > 1.3 * paper.distance.median()


def test_first_valid_step_and_stop_at_valid(digits3):
    model = pa.models.load("tiny-cnn")
    targets = digits3[0][:4]
    cfg = InversionConfig(steps=60, optimizer="adam", batch_size=8)
    free = invert(model, targets, seeds="image", config=cfg, thresholds={"penultimate": 0.3})
    first = free.first_valid_step
    assert (first >= 0).any() and (first < 60).all()
    # the curve agrees: the recorded distance is below the threshold from that step on
    for row, step in enumerate(first.tolist()):
        if step >= 0:
            recorded = [
                v
                for s, v in zip(free.curve_steps, free.curves[row].tolist(), strict=True)
                if s >= step
            ]
            assert recorded[0] < 0.3 or free.curve_steps[0] > step
    stopped = invert(
        model,
        targets,
        seeds="image",
        config=InversionConfig(steps=60, optimizer="adam", batch_size=8, stop_at_valid=1.0),
        thresholds={"penultimate": 0.3},
    )
    done = first >= 0
    assert torch.equal(stopped.steps_taken[done], first[done])  # stopped where it first passed
    assert (stopped.steps_taken[~done] == 60).all()
    # one image stopping does not change the others (rules are per image)
    keep = ~done
    torch.testing.assert_close(stopped.iris[keep], free.iris[keep], rtol=0, atol=1 / 255)


def test_under_transforms_validity_is_checked_at_the_curve_points(digits3):
    model = pa.models.load("tiny-cnn")
    cfg = InversionConfig(steps=60, optimizer="adam", loss="transforms", record_every=10)
    result = invert(
        model, digits3[0][:4], seeds="image", config=cfg, thresholds={"penultimate": 0.5}
    )
    first = result.first_valid_step
    assert (first >= 0).any()
    assert set(first[first >= 0].tolist()) <= set(result.curve_steps)


def test_stop_at_valid_without_a_threshold_is_refused(digits3):
    cfg = InversionConfig(steps=5, stop_at_valid=0.8)
    with pytest.raises(ConfigError, match="stop_at_valid needs the validity threshold"):
        invert(pa.models.load("tiny-cnn"), digits3[0][:2], config=cfg)


def test_gate_warning_names_the_cause_and_the_fix():
    fails = np.array([False] * 9 + [True])
    stalled = gate_warning("penultimate", fails, np.full(10, 0.8), "pixel", 1000)
    assert "Only 1 of 10 IRIs (10%)" in stalled and "sigmoid" in stalled
    assert "clamped pixels saturated" in stalled
    slow = gate_warning("penultimate", fails, np.full(10, 0.05), "sigmoid", 200)
    assert "200 steps" in slow and "more steps" in slow
    assert gate_warning("penultimate", ~fails, np.zeros(10), "pixel", 10) is None
    prior = gate_warning("penultimate", fails, np.zeros(10), "sigmoid", 1000, "transforms")
    assert "transforms loss trades the representation distance" in prior


@pytest.mark.parametrize("name", ["pixel", "ssim", "model:tiny-cnn"])
def test_any_differentiable_judge_is_an_adversary(digits3, name):
    targets = digits3[0][:3]
    distance = get_adversary(name)
    x = torch.rand_like(targets, requires_grad=True)
    (g,) = torch.autograd.grad(distance(x, targets).sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    cfg = InversionConfig(steps=20, optimizer="adam", loss="adversarial", adversary=name)
    assert cfg.resolved_adversarial_lambda == "auto"  # 10 is calibrated for lpips-alex only
    plain = invert(
        pa.models.load("tiny-vgg"),
        targets,
        seeds="uniform",
        config=InversionConfig(steps=20, optimizer="adam"),
    )
    adv = invert(pa.models.load("tiny-vgg"), targets, seeds="uniform", config=cfg)
    with torch.no_grad():
        assert distance(adv.iris, targets).mean() > distance(plain.iris, targets).mean()


def test_an_adversary_without_gradients_is_refused():
    vote = Ensemble([get_judge("pixel"), get_judge("ssim")])
    with pytest.raises(ConfigError, match=r"has no gradient.*use a differentiable one: .*pixel"):
        as_adversary(vote)
    with pytest.raises(pa.errors.UnknownNameError, match="Did you mean 'ssim'"):
        get_adversary("sism")


def test_with_random_transforms_validity_is_judged_on_the_image_itself(digits3):
    model = pa.models.load("tiny-cnn")
    targets = digits3[0][:4]
    threshold = 0.3
    cfg = InversionConfig(steps=80, optimizer="adam", loss="transforms", stop_at_valid=1.0)
    r = invert(model, targets, seeds="image", config=cfg, thresholds={"penultimate": threshold})
    stopped = r.steps_taken < 80
    assert stopped.any()
    # a stopped IRI (the last iterate, kept as it was) passes untransformed, up to 8-bit rounding
    assert (r.distance[stopped] < threshold * 1.05).all()
