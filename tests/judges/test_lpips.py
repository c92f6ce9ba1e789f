import pytest
import torch
from torch import nn

from percalign.errors import ConfigError, UnknownNameError, WeightsNotFoundError
from percalign.judges import LPIPS


@pytest.fixture
def tiny_lpips():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()
    )
    return LPIPS(net, heads="uniform", taps=(1, 3))


def test_zero_on_identical_symmetric_and_ordered(tiny_lpips):
    x = torch.rand(3, 3, 24, 24)
    assert torch.all(tiny_lpips(x, x) == 0)
    y = torch.rand(3, 3, 24, 24)
    torch.testing.assert_close(tiny_lpips(x, y), tiny_lpips(y, x))
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    noise = torch.rand(3, 3, 24, 24)
    assert (tiny_lpips(x, blurred) < tiny_lpips(x, noise)).all()


def test_grayscale_is_replicated(tiny_lpips):
    g = torch.rand(2, 1, 16, 16)
    h = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(
        tiny_lpips(g, h), tiny_lpips(g.expand(-1, 3, -1, -1), h.expand(-1, 3, -1, -1))
    )


def test_calibrated_heads_need_backbone_weights_offline():
    with pytest.raises(WeightsNotFoundError, match=r"alexnet-owt-7be5be79\.pth"):
        LPIPS("alex")
    with pytest.raises(UnknownNameError, match="Did you mean 'alex'"):
        LPIPS("alexx")


def test_calibrated_heads_load_with_given_backbone_weights(tmp_path):
    import torchvision

    path = tmp_path / "squeeze.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    d = LPIPS("squeeze", backbone_weights=path)
    assert d.name == "lpips-squeeze" and len(d.taps) == 7
    assert (d.head0 >= 0).all() and d.head0.numel() == 64  # the published non-negative head
    x = torch.rand(1, 3, 32, 32)
    assert d(x, x).item() == 0.0


def test_random_heads_are_seeded_signed_and_named_as_such(tmp_path):
    """The authors' uncalibrated variant: heads drawn like a fresh 1x1 convolution's."""
    import torchvision

    path = tmp_path / "squeeze.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    a = LPIPS("squeeze", heads="random", backbone_weights=path)
    b = LPIPS("squeeze", heads="random", backbone_weights=path)
    other = LPIPS("squeeze", heads="random", backbone_weights=path, seed=1)
    assert a.name == "lpips-squeeze-random"
    assert torch.equal(a.head0, b.head0) and not torch.equal(a.head0, other.head0)
    bound = 1 / a.head0.numel() ** 0.5
    assert (a.head0.abs() <= bound).all() and (a.head0 < 0).any() and (a.head0 > 0).any()
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert not torch.allclose(a(x, y), LPIPS("squeeze", backbone_weights=path)(x, y))


def test_custom_backbones_cannot_claim_calibrated_heads():
    with pytest.raises(ConfigError, match="heads='uniform'"):
        LPIPS(nn.Sequential(nn.Conv2d(3, 3, 1)), taps=(0,))


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["alex", "vgg", "squeeze"])
def test_same_values_and_gradients_as_the_lpips_package(tmp_path, backbone):
    """Both with the same random backbone (no download) and the published heads."""
    import warnings

    import lpips
    import torchvision

    with warnings.catch_warnings():  # the package's own torchvision and torch.load calls
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        reference = lpips.LPIPS(net=backbone, pnet_rand=True, verbose=False)
    ctor = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}[backbone]
    full = getattr(torchvision.models, ctor)(weights=None)
    # the package splits torchvision's .features into slices, keeping each layer's index
    copied = 0
    for slice_ in reference.net.children():
        for index, layer in slice_.named_children():
            full.features[int(index)].load_state_dict(layer.state_dict())
            copied += sum(p.numel() for p in layer.parameters())
    assert copied == sum(p.numel() for p in full.features.parameters())
    torch.save(full.state_dict(), tmp_path / "backbone.pth")
    ours = LPIPS(backbone, backbone_weights=tmp_path / "backbone.pth")

    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 64, 64, generator=g)
    y = (x + 0.2 * torch.rand(3, 3, 64, 64, generator=g)).clamp(0, 1)
    x_ours, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    d_ours = ours(x_ours, y)
    d_ref = reference(x_ref, y, normalize=True).flatten()  # normalize: inputs in [0, 1]
    assert (d_ours > 0).all()
    torch.testing.assert_close(d_ours, d_ref, rtol=1e-4, atol=1e-6)
    d_ours.sum().backward()
    d_ref.sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-3, atol=1e-7)
