"""Properties of the inversion engine on tiny models (CPU, float32, seconds)."""

import pytest
import torch
from torch import nn

import percalign as pa
from percalign.errors import ConfigError, InputShapeError, NumericalError, WeightsNotFoundError
from percalign.inversion import InversionConfig, invert
from percalign.judges import LPIPS


def _cfg(**kw):
    return InversionConfig(**{"steps": 30, "optimizer": "adam", **kw})


@pytest.fixture(scope="module")
def vgg():
    return pa.models.load("tiny-vgg")


@pytest.mark.parametrize("optimizer", ["normalized-gd", "adam", "sgd"])
def test_distance_decreases_and_iris_stay_valid_images(vgg, digits3, optimizer):
    targets, _ = digits3
    r = invert(vgg, targets, seeds="uniform", config=_cfg(optimizer=optimizer, steps=40))
    assert (r.distance < r.seed_distance).all()
    assert (r.curves[:, -1] < r.curves[:, 0]).all()
    assert r.iris.min() >= 0 and r.iris.max() <= 1
    levels = r.iris * 255
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)
    assert r.iris.shape == targets.shape and len(r) == len(targets)


@pytest.mark.parametrize(
    "loss",
    [
        "regularizer-free",
        "transforms",
        "fourier",
        "penalties",
        "penalties-tv-l6",
        "fourier+transforms",
    ],
)
def test_every_loss_family_lowers_the_distance(vgg, digits3, loss):
    targets, _ = digits3
    r = invert(vgg, targets[:4], seeds="uniform", config=_cfg(loss=loss, steps=40))
    assert r.distance.mean() < r.seed_distance.mean()
    assert r.iris.min() >= 0 and r.iris.max() <= 1


@pytest.mark.parametrize("loss", ["regularizer-free", "transforms", "fourier"])
@pytest.mark.parametrize("optimizer", ["normalized-gd", "adam"])
def test_batch_equals_items_one_by_one(digits3, loss, optimizer):
    # No max-pooling here: on flat image regions its ties may be broken differently by the
    # batched and the single-image kernels, which changes gradients but not the engine.
    model = pa.models.load("tiny-resnet")
    targets, labels = digits3
    targets, labels = targets[:4], labels[:4]
    # Few steps: with random transforms, float rounding that differs between batch sizes
    # (about 1e-6) is amplified by later steps; the property is about the computation.
    cfg = dict(loss=loss, optimizer=optimizer, steps=5)
    together = invert(
        model, targets, seeds="super-noise,image", labels=labels, config=_cfg(batch_size=8, **cfg)
    )
    alone = invert(
        model, targets, seeds="super-noise,image", labels=labels, config=_cfg(batch_size=1, **cfg)
    )
    torch.testing.assert_close(together.seeds, alone.seeds, rtol=0, atol=0)
    # the same optimization; floating-point sums may round a pixel to the next 8-bit level
    assert (together.iris - alone.iris).abs().max() <= 1 / 255 + 1e-6
    torch.testing.assert_close(together.distance, alone.distance, rtol=1e-3, atol=1e-3)


def test_same_config_gives_bit_identical_iris(vgg, digits3):
    targets, labels = digits3
    cfg = _cfg(loss="transforms", steps=10)
    a = invert(vgg, targets, seeds="super-noise,image", labels=labels, config=cfg)
    b = invert(vgg, targets, seeds="super-noise,image", labels=labels, config=cfg)
    assert torch.equal(a.iris, b.iris) and torch.equal(a.seeds, b.seeds)
    c = invert(
        vgg,
        targets,
        seeds="super-noise,image",
        labels=labels,
        config=_cfg(loss="transforms", steps=10, seed=1),
    )
    assert not torch.equal(a.seeds, c.seeds)


def test_rows_are_objective_target_seed_ordered(vgg, digits3):
    targets, _ = digits3
    r = invert(
        vgg,
        targets[:2],
        layers=["features.3", "penultimate"],
        seeds="grey,super-noise:2",
        config=_cfg(steps=3),
    )
    assert len(r) == 2 * 2 * 3
    assert r.objective == ["features.3"] * 6 + ["penultimate"] * 6
    assert r.target_index.tolist() == [0, 0, 0, 1, 1, 1] * 2
    assert r.seed_kind[:3] == ["grey", "super-noise", "super-noise"]
    assert r.seed_copy[:3] == [0, 0, 1]
    assert torch.isnan(r.layer_distance["penultimate"][:6]).all()
    torch.testing.assert_close(r.layer_distance["penultimate"][6:], r.distance[6:])


def test_weighted_multi_layer_objective(vgg, digits3):
    targets, _ = digits3
    r = invert(
        vgg, targets[:2], layers="0.5*features.3+penultimate", seeds="uniform", config=_cfg(steps=5)
    )
    expected = 0.5 * r.layer_distance["features.3"] + r.layer_distance["penultimate"]
    torch.testing.assert_close(r.distance, expected)
    assert r.objective[0] == "0.5*features.3+penultimate"


def test_early_stop_freezes_finished_images(vgg, digits3):
    targets, _ = digits3
    free = invert(vgg, targets, seeds="uniform", config=_cfg(steps=20, record_every=1))
    assert (free.steps_taken == 20).all() and free.curve_steps == list(range(21))
    # a threshold that some images pass mid-way and others never: a partly frozen batch
    stop = float(free.curves[:, 19].median())
    r = invert(
        vgg, targets, seeds="uniform", config=_cfg(steps=20, record_every=1, early_stop=stop)
    )
    below = free.curves[:, :20] <= stop
    expected = torch.where(below.any(1), below.float().argmax(1), torch.tensor(20))
    assert 0 < int((expected < 20).sum()) < len(expected) and (expected > 0).any()
    # each image stops at the first step it is below the threshold, and only then
    assert r.steps_taken.tolist() == expected.tolist()
    running = expected == 20
    for i in torch.nonzero(~running).flatten().tolist():
        s = int(expected[i])
        # frozen from its stop on: the curve is flat there and matches the free run before
        torch.testing.assert_close(r.curves[i, : s + 1], free.curves[i, : s + 1])
        assert (r.curves[i, s:] == r.curves[i, s]).all()
    # the images never stopped ran as in the free run, although the batch shrank around them
    assert (r.iris[running] - free.iris[running]).abs().max() <= 1 / 255 + 1e-6
    torch.testing.assert_close(r.distance[running], free.distance[running], rtol=1e-3, atol=1e-3)
    everything = invert(vgg, targets[:3], seeds="uniform", config=_cfg(steps=20, early_stop=1e3))
    assert (everything.steps_taken == 0).all()


def test_progress_reaches_the_total(vgg, digits3):
    targets, _ = digits3
    events = []
    invert(
        vgg, targets, seeds="uniform", config=_cfg(steps=10, batch_size=3), progress=events.append
    )
    assert events[-1].steps_done == events[-1].steps_total == 3 * 10
    assert [e.steps_done for e in events] == sorted(e.steps_done for e in events)


def test_adversarial_loss_moves_away_from_the_target(vgg, digits3):
    targets, _ = digits3
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
    )
    lpips = LPIPS(net, heads="uniform", taps=(1, 3))
    plain = invert(vgg, targets, seeds="uniform", config=_cfg(steps=25))
    for lam in (10.0, "auto"):
        adv = invert(
            vgg,
            targets,
            seeds="uniform",
            perceptual=lpips,
            config=_cfg(steps=25, loss="adversarial", adversarial_lambda=lam),
        )
        with torch.no_grad():
            assert lpips(adv.iris, targets).mean() > lpips(plain.iris, targets).mean()


def test_adversarial_loss_without_lpips_weights_says_what_to_supply(vgg, digits3):
    targets, _ = digits3
    with pytest.raises(WeightsNotFoundError, match=r"alexnet-owt-7be5be79\.pth"):
        invert(vgg, targets, config=_cfg(loss="adversarial"))


def test_bf16_autocast_changes_the_optimization_not_the_reported_distances(vgg, digits3):
    targets, _ = digits3
    fp32 = invert(vgg, targets[:2], seeds="uniform", config=_cfg(steps=5))
    bf16 = invert(vgg, targets[:2], seeds="uniform", config=_cfg(precision="bf16", steps=5))
    assert not torch.equal(bf16.curves, fp32.curves)  # the loss was computed in bf16
    # distances are measured in fp32 on the saved images: the seeds' are identical
    torch.testing.assert_close(bf16.seed_distance, fp32.seed_distance, rtol=0, atol=0)
    assert torch.isfinite(bf16.distance).all()
    torch.testing.assert_close(bf16.distance, fp32.distance, rtol=0.15, atol=0.0)


class _Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = torch.log(self.conv(x).mean((2, 3)) - 100.0)  # NaN for every input
        return self.fc(h)


def test_nan_loss_is_a_numerical_error(digits3):
    targets, _ = digits3
    model = pa.models.from_module(_Exploding(), mean=(0.5,) * 3, std=(0.5,) * 3, input_size=32)
    with pytest.raises(NumericalError, match="NaN or infinite"):
        invert(model, targets[:2], config=_cfg(steps=3))


def test_all_zero_target_representation_is_refused(digits3):
    targets, _ = digits3
    net = nn.Sequential(
        nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
    )
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.fill_(-1.0)
    model = pa.models.from_module(net, mean=(0.5,) * 3, std=(0.5,) * 3, input_size=32)
    with pytest.raises(InputShapeError, match="all-zero representation"):
        invert(model, targets[:2], config=_cfg(steps=3))


def test_bad_inputs(vgg, digits3):
    targets, _ = digits3
    with pytest.raises(InputShapeError, match=r"\(N, 3, H, W\)"):
        invert(vgg, targets[:, :1], config=_cfg())
    with pytest.raises(InputShapeError, match=r"\[0, 1\]"):
        invert(vgg, targets * 2, config=_cfg())
    with pytest.raises(ConfigError, match="'steps' parameter"):
        InversionConfig(steps=0)
    with pytest.raises(pa.errors.UnknownNameError, match=r"Did you mean 'features\.3'"):
        invert(vgg, targets, layers="features.33", config=_cfg())
