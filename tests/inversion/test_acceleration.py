"""bf16 autocast, torch.compile and channels-last against fp32 eager, on the CPU.

Each changes how the loss is computed, not the loss. Two checks:

- one forward and backward of the engine's loss (the extractor's features and the input
  gradient) agree with fp32 eager: compile and channels-last to float rounding (relative
  1e-4; found 0 on the features, 3e-7 on the gradient), bf16 to relative 0.15 (found 3e-3
  on the features and 8e-2 on the gradient: bf16 keeps 8 bits of mantissa);
- a whole run (60 Adam steps of tiny-vgg, distances 0.007-0.05): rounding differences grow
  along the optimization path, so the final distances agree within an absolute 0.01 for
  compile and channels-last in fp32 (found: 3.8e-3 and 6e-8 on this CPU) and 0.015 for bf16
  with or without compile (found: up to 0.0125; bf16's loss cannot resolve distances much
  below 0.01). The validity gate decides the same for every IRI farther than that tolerance
  from its threshold (one closer may legitimately flip).
"""

import pytest
import torch

import percalign as pa
from percalign.inversion import InversionConfig, invert
from percalign.inversion.acceleration import fast_features
from percalign.inversion.objective import feature_norm, relative_distance
from percalign.inversion.validity import null_distribution

OPTIONS = [
    {"precision": "bf16"},
    {"compile": True},
    {"precision": "bf16", "compile": True},
    {"channels_last": True},
]
IDS = ["bf16", "compile", "bf16+compile", "channels-last"]
RUN_TOLERANCE = {"fp32": 1e-2, "bf16": 1.5e-2}
STEP_TOLERANCE = {"fp32": 1e-4, "bf16": 0.15}


def _config(**kw):
    base = {"steps": 60, "optimizer": "adam", "lr": 0.05, "batch_size": 16, "fold_batchnorm": False}
    return InversionConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def setting():
    from percalign.data import load_images, to_channels

    model = pa.models.load("tiny-vgg")
    digits = to_channels(load_images("digits", 72, size=32, seed=3).images, 3)
    targets, pool = digits[:8], digits[8:]
    null = null_distribution(model, pool, "penultimate", percentile=0.1)
    reference = invert(model, targets, seeds="uniform,image", config=_config())
    return model, targets, null, reference


@pytest.mark.slow
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_one_step_matches_fp32_eager(setting, options):
    model, targets, _, _ = setting
    if options.get("channels_last"):
        from percalign.inversion.acceleration import model_for_run

        model = model_for_run(model, True)
    extractor = model.extractor(["features.3", "penultimate"])
    fast = fast_features(
        extractor,
        options.get("precision", "fp32"),
        options.get("channels_last", False),
        options.get("compile", False),
    )
    tolerance = STEP_TOLERANCE[options.get("precision", "fp32")]
    with torch.no_grad():
        goal = extractor(targets)
    x = torch.rand(targets.shape, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    results = []
    for features in (extractor, fast):
        feats = features(x)  # the engine's loss: relative distance to the targets' features
        loss = sum(
            relative_distance(f.float(), goal[k], feature_norm(goal[k])).sum()
            for k, f in feats.items()
        )
        (grad,) = torch.autograd.grad(loss, x)
        results.append(({k: v.detach().float() for k, v in feats.items()}, grad))
    (ref_feats, ref_grad), (got_feats, got_grad) = results
    for name, value in ref_feats.items():
        gap = (got_feats[name] - value).norm() / value.norm()
        assert gap <= tolerance, f"{options}: {name} differs by {gap:.1e} (relative)"
    gap = (got_grad - ref_grad).norm() / ref_grad.norm()
    assert gap <= tolerance, f"{options}: input gradient differs by {gap:.1e} (relative)"


@pytest.mark.slow
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_same_iris_and_validity_as_fp32_eager(setting, options):
    model, targets, null, reference = setting
    result = invert(model, targets, seeds="uniform,image", config=_config(**options))
    tolerance = RUN_TOLERANCE[options.get("precision", "fp32")]
    gap = (result.distance - reference.distance).abs().max().item()
    assert gap <= tolerance, f"{options}: distances differ by {gap:.2e} > {tolerance:g}"
    # the reported distances are fp32 eager whatever the options: same seeds, same numbers
    torch.testing.assert_close(result.seed_distance, reference.seed_distance)
    expected = null.valid(reference)
    assert 0 < expected.sum() < len(expected)  # a gate that decides both ways
    clear = ((reference.distance - null.threshold).abs() > tolerance).numpy()
    assert (null.valid(result)[clear] == expected[clear]).all()


def test_channels_last_leaves_the_callers_model_alone(setting):
    model, targets, _, _ = setting
    before = {k: v.stride() for k, v in model.module.state_dict().items()}
    invert(model, targets[:2], seeds="uniform", config=_config(channels_last=True, steps=2))
    assert {k: v.stride() for k, v in model.module.state_dict().items()} == before


def _with_running_stats(name: str) -> torch.nn.Module:
    """Network ``name`` (random weights) whose batch norms hold non-trivial running stats."""
    model = pa.models.load(name)
    gen = torch.Generator().manual_seed(1)
    for module in model.module.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen))
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.randn(n, generator=gen))
            module.bias.data.copy_(torch.randn(n, generator=gen))
    return model


@pytest.mark.parametrize("name", ["tiny-resnet", "cifar-resnet18", "small-cnn"])
def test_folding_batch_norms_keeps_the_function(name):
    import copy

    from percalign.inversion.acceleration import fold_batchnorm

    if name == "small-cnn":
        from percalign.models.archs import SmallCNN

        net = SmallCNN(1, 10, 8).eval()
        net.stage1[1].running_var.fill_(3.0)
        net.stage1[1].running_mean.fill_(0.2)
    else:
        net = _with_running_stats(name).module
    x = torch.rand(3, next(net.parameters()).shape[1], 32, 32)
    before = net(x)
    folded_net = copy.deepcopy(net)
    folded = fold_batchnorm(folded_net)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    left = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded_net.modules())
    assert folded and left == n_bn - len(folded)
    torch.testing.assert_close(folded_net(x), before, rtol=1e-4, atol=1e-4)


def test_folding_leaves_read_layers_and_untraceable_networks_alone():
    import copy

    from percalign.inversion.acceleration import fold_batchnorm

    net = _with_running_stats("tiny-resnet").module
    pairs = fold_batchnorm(copy.deepcopy(net))
    kept = copy.deepcopy(net)
    assert pairs[0] not in fold_batchnorm(kept, keep=[pairs[0]])
    assert isinstance(dict(kept.named_modules())[pairs[0]], torch.nn.BatchNorm2d)

    class Branchy(torch.nn.Module):  # data-dependent control flow: fx cannot trace it
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)

        def forward(self, x):
            return self.bn(self.conv(x)) if x.sum() > 0 else x

    assert fold_batchnorm(Branchy().eval()) == []


def test_folded_run_matches_the_unfolded_one_and_leaves_the_model_alone():
    model = _with_running_stats("tiny-resnet")
    from percalign.data import load_images, to_channels

    targets = to_channels(load_images("digits", 6, size=32, seed=5).images, 3)
    types = [type(m) for m in model.module.modules()]
    runs = [
        invert(model, targets, seeds="uniform", config=_config(fold_batchnorm=fold, steps=30))
        for fold in (False, True)
    ]
    assert [type(m) for m in model.module.modules()] == types
    assert (runs[0].distance - runs[1].distance).abs().max() <= RUN_TOLERANCE["fp32"]
    torch.testing.assert_close(runs[0].seed_distance, runs[1].seed_distance)
    # the steps were computed by the folded copy: rounding differs, so some pixel does
    assert not torch.equal(runs[0].iris, runs[1].iris)
