import pytest
import torch

import percalign as pa
from percalign.errors import ConfigError, UnknownNameError


def _full_forward_outputs(model, paths, x):
    """Outputs of modules at ``paths`` from an ordinary, complete forward pass."""
    seen = {}
    modules = dict(model.module.named_modules())

    def keep(path):
        def hook(_m, _a, out):
            seen.setdefault(path, out.clone())  # returns None: the output itself is unchanged

        return hook

    handles = [modules[p].register_forward_hook(keep(p)) for p in paths]
    with torch.no_grad():
        model.module(model.normalize(x))
    for h in handles:
        h.remove()
    return seen


FAMILIES = [
    # (model name, load kwargs, layers to read, input size)
    ("tiny-cnn", {}, ["block1", "block3"], 32),
    ("tiny-resnet", {}, ["layer1", "layer2.0"], 32),
    ("tiny-vgg", {}, ["features.3", "classifier.1"], 32),
    ("resnet18", {"weights": "none", "image_size": 64}, ["layer2", "layer4.1"], 64),
    ("densenet121", {"weights": "none", "image_size": 64}, ["features.denseblock2"], 64),
    ("inception_v3", {"weights": "none", "image_size": 96}, ["Mixed_5b", "Mixed_6a"], 96),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "layers", "size"), FAMILIES, ids=[f[0] for f in FAMILIES]
)
def test_truncated_extraction_equals_full_forward(name, kwargs, layers, size):
    model = pa.models.load(name, **kwargs)
    x = torch.rand(2, 3, size, size)
    got = model.extractor(layers)(x)
    ref = _full_forward_outputs(model, layers, x)
    for layer in layers:
        torch.testing.assert_close(got[layer], ref[layer])


@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [
        ("tiny-vit", {}, 32),
        ("timm:test_vit", {"weights": "none"}, 160),
    ],
)
def test_vit_tokens_pool_to_cls_or_mean(name, kwargs, size):
    model = pa.models.load(name, **kwargs)
    x = torch.rand(2, 3, size, size)
    tokens = model.extractor(["blocks.1"], token_pool="all")(x)["blocks.1"]
    assert tokens.ndim == 3
    cls = model.extractor(["blocks.1"], token_pool="cls")(x)["blocks.1"]
    mean = model.extractor(["blocks.1"], token_pool="mean")(x)["blocks.1"]
    torch.testing.assert_close(cls, tokens[:, 0])
    torch.testing.assert_close(mean, tokens.mean(1))
    assert model.spec.token_pool == "cls"


def test_penultimate_is_the_head_input():
    model = pa.models.load("tiny-vgg")
    x = torch.rand(3, 3, 32, 32)
    feats = model.extractor(["penultimate"])(x)["penultimate"]
    head = model.module.classifier[3]
    torch.testing.assert_close(head(feats), model.logits(x))


def test_forward_stops_after_the_deepest_layer():
    model = pa.models.load("tiny-cnn")
    calls = []
    handle = model.module.block3.register_forward_hook(lambda *a: calls.append(1))
    model.extractor(["block2"])(torch.rand(1, 3, 32, 32))
    handle.remove()
    assert calls == []


def test_gradients_reach_the_input_but_not_the_weights():
    model = pa.models.load("tiny-resnet")
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    model.extractor(["penultimate"])(x)["penultimate"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.module.parameters())


def _grad_wrt(model, layer, watched, fake, x):
    """Gradient of sum(features at ``layer``) w.r.t. the output of module ``watched``."""
    captured = {}
    extractor = model.extractor([layer], fake_relu=fake)
    module = dict(model.module.named_modules())[watched]

    def keep(_m, _a, out):
        captured.update(t=out, value=out.detach().clone())
        return out.clone()  # an in-place ReLU downstream must not overwrite the watched tensor

    handle = module.register_forward_hook(keep)
    x = x.clone().requires_grad_(True)
    feats = extractor(x)[layer]
    handle.remove()
    (g,) = torch.autograd.grad(feats.sum(), captured["t"])
    return feats.detach(), g, captured["value"]


@pytest.mark.parametrize(
    ("name", "kwargs", "watched"),
    [
        ("tiny-cnn", {}, "block3.0"),  # module ReLU in a Sequential
        ("tiny-resnet", {}, "layer2.0.bn2"),  # one ReLU module called twice per block
        ("densenet121", {"weights": "none", "image_size": 64}, "features.norm5"),  # functional ReLU
    ],
)
def test_fake_relu_same_forward_pass_through_backward(name, kwargs, watched):
    model = pa.models.load(name, **kwargs)
    x = torch.rand(2, 3, *model.spec.input_size)
    f_real, g_real, pre = _grad_wrt(model, "penultimate", watched, False, x)
    f_fake, g_fake, _ = _grad_wrt(model, "penultimate", watched, True, x)
    torch.testing.assert_close(f_real, f_fake)
    area = pre.shape[-1] * pre.shape[-2]
    # fake: every position gets the average-pool gradient, negative pre-activations included
    torch.testing.assert_close(g_fake, torch.full_like(g_fake, 1.0 / area))
    if name != "tiny-resnet":  # there the watched tensor is not the ReLU's only input
        assert (pre < 0).any() and (g_real[pre < 0] == 0).all()


def test_fake_relu_needs_a_relu_before_the_layer():
    model = pa.models.load("tiny-cnn")
    with pytest.raises(ConfigError, match="no ReLU runs before"):
        model.extractor(["block1.0"], fake_relu=True)


def test_unknown_layer_names_close_matches():
    model = pa.models.load("tiny-resnet")
    with pytest.raises(UnknownNameError, match="Did you mean 'layer2'"):
        model.extractor(["layer22"])


def test_penultimate_without_head_is_explained():
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    m = pa.models.from_module(net, mean=(0.0,) * 3, std=(1.0,) * 3, input_size=8)
    with pytest.raises(UnknownNameError, match="no classifier head"):
        m.resolve_layer("penultimate")


def test_empty_layer_list_is_rejected():
    with pytest.raises(ConfigError, match="at least one layer"):
        pa.models.load("tiny-cnn").extractor([])


class _PassThroughReLU(torch.nn.Module):
    """A ReLU module whose backward passes every gradient (the authors' patch of a block)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x.clamp(min=0) - x).detach()


@pytest.mark.parametrize(("name", "final"), [("timm:resnet18", "act2"), ("timm:resnet26", "act3")])
def test_fake_relu_of_an_imagenet_resnet_is_every_final_relu_of_layer4(name, final):
    """As the authors do for ImageNet ResNets: each layer4 block's last ReLU, not only the last."""
    model = pa.models.load(name, weights="none", image_size=64)
    assert model.spec.fake_relu_at == "blocks:layer4"
    x = torch.rand(2, 3, 64, 64)

    def input_grad(extractor):
        xx = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(extractor(xx)["penultimate"].sum(), xx)
        return g

    def patched(blocks):
        copy = pa.models.load(name, weights="none", image_size=64)
        copy.module.load_state_dict(model.module.state_dict())
        for block in blocks(copy.module.layer4):
            setattr(block, final, _PassThroughReLU())
        return input_grad(copy.extractor(["penultimate"]))

    ours = input_grad(model.extractor(["penultimate"], fake_relu=True))
    torch.testing.assert_close(ours, patched(list))
    assert not torch.allclose(ours, patched(lambda stage: stage[-1:]))  # not the last alone


def test_fake_relu_before_layer4_of_a_resnet_is_the_last_relu_before_the_layer():
    model = pa.models.load("resnet18", weights="none", image_size=64)
    assert model.spec.fake_relu_at == "blocks:layer4"
    assert len(model.extractor(["layer3"], fake_relu=True)._fake_at) == 1
    assert len(model.extractor(["penultimate"], fake_relu=True)._fake_at) == len(
        model.module.layer4
    )


def test_unnormalized_input_feeds_the_network_the_pixels_as_given():
    """The authors' adversarial runs skipped the clamp and normalization: an explicit option."""
    model = pa.models.load("tiny-cnn")
    x = torch.rand(2, 3, 32, 32) * 1.4 - 0.2
    raw = model.extractor(["penultimate"], normalize=False)(x)["penultimate"]
    normalized = model.extractor(["penultimate"])(x)["penultimate"]
    captured = {}
    handle = model.module.fc.register_forward_pre_hook(lambda _m, a: captured.update(x=a[0]))
    with torch.no_grad():
        model.module(x)
    handle.remove()
    torch.testing.assert_close(raw, captured["x"])
    assert not torch.allclose(raw, normalized)


def test_unnormalized_optimization_keeps_normalized_targets_and_distances(digits3):
    from percalign.inversion import InversionConfig, invert

    model = pa.models.load("tiny-cnn")
    targets = digits3[0][:2]
    cfg = InversionConfig(steps=3, normalize_input=False, fold_batchnorm=False, record_every=1)
    result = invert(model, targets, seeds="image", config=cfg)
    fx = model.extractor(["penultimate"])
    with torch.no_grad():
        want, goal = fx(result.iris)["penultimate"], fx(result.targets)["penultimate"]
    reported = (want - goal[result.target_index]).norm(dim=1) / goal[result.target_index].norm(
        dim=1
    )
    torch.testing.assert_close(result.distance, reported)
    # the optimized loss compared the raw iterate with the normalized target: at the seed it
    # is not the (normalized) seed distance
    assert not torch.allclose(result.curves[:, 0], result.seed_distance)


def test_the_cifar_vgg_has_no_fake_relu_as_in_the_authors_code():
    vgg, resnet = pa.models.load("cifar-vgg11"), pa.models.load("cifar-resnet18")
    assert vgg.spec.fake_relu_at == "none" and resnet.spec.fake_relu_at == "last"
    x = torch.rand(2, 3, 32, 32)

    def grad(model, fake):
        xx = x.clone().requires_grad_(True)
        out = model.extractor(["penultimate"], fake_relu=fake)(xx)["penultimate"]
        return torch.autograd.grad(out.sum(), xx)[0]

    torch.testing.assert_close(grad(vgg, True), grad(vgg, False), rtol=0, atol=0)
    assert not torch.allclose(grad(resnet, True), grad(resnet, False))
