import pytest
import torch
from torch import nn

import percalign as pa
from percalign.errors import ConfigError, UnknownNameError, WeightsNotFoundError

TINY = ["tiny-cnn", "tiny-resnet", "tiny-vgg", "tiny-vit"]


@pytest.mark.parametrize("name", TINY)
def test_tiny_models_are_small_registered_and_reproducible(name):
    a, b = pa.models.load(name), pa.models.load(name)
    n_params = sum(p.numel() for p in a.module.parameters())
    assert 1000 < n_params < 10000
    assert a.weights_sha256 == b.weights_sha256
    assert pa.models.load(name, seed=1).weights_sha256 != a.weights_sha256
    assert name in pa.models.list_models()
    assert a.spec.input_size == (32, 32) and a.spec.num_classes == 10
    assert not any(p.requires_grad for p in a.module.parameters())
    assert not a.module.training
    assert a.logits(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_model_names_close_matches():
    with pytest.raises(UnknownNameError, match="Did you mean 'tiny-cnn'"):
        pa.models.load("tiny-cn")


def test_registered_model_rejects_named_weights():
    with pytest.raises(ConfigError, match="no weights named"):
        pa.models.load("tiny-cnn", weights="IMAGENET1K_V1")


def test_torchvision_random_weights_and_image_size():
    m = pa.models.load("resnet18", weights="none", image_size=64)
    assert m.spec.source == "torchvision" and m.spec.input_size == (64, 64)
    assert m.spec.head == "fc" and m.spec.num_classes == 1000
    assert m.resolve_layer("penultimate").use_input


def test_torchvision_pretrained_offline_names_the_file():
    with pytest.raises(WeightsNotFoundError, match=r"resnet18-f37072fd\.pth"):
        pa.models.load("resnet18")


def test_torchvision_unknown_weights_enum():
    with pytest.raises(UnknownNameError, match="IMAGENET1K_V1"):
        pa.models.load("resnet18", weights="IMAGENET1K_V9")


def test_timm_model_by_prefix_and_offline_pretrained():
    m = pa.models.load("timm:test_vit", weights="none")
    assert m.spec.source == "timm" and m.spec.token_pool == "cls" and m.spec.head == "head"
    with pytest.raises(WeightsNotFoundError, match="Hugging Face cache"):
        pa.models.load("timm:test_resnet")


def test_from_module_wraps_any_network():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    m = pa.models.from_module(net, mean=(0.5,), std=(0.2,), input_size=16, name="mine")
    assert m.spec.head == "4" and m.spec.in_chans == 1 and m.spec.input_size == (16, 16)
    feats = m.extractor(["penultimate"])(torch.rand(2, 1, 16, 16))
    assert feats["penultimate"].shape == (2, 4)
    with pytest.raises(ConfigError, match="one value per channel"):
        pa.models.from_module(net, mean=(0.5, 0.5), std=(0.2,), input_size=16)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_file_needs_preprocessing_and_exposes_only_output(tmp_path):
    net = pa.models.load("tiny-cnn").module
    path = tmp_path / "net.pt"
    torch.jit.script(net).save(str(path))
    with pytest.raises(ConfigError, match="mean=, std= and input_size="):
        pa.models.load(str(path))
    m = pa.models.load(str(path), mean=(0.5,) * 3, std=(0.25,) * 3, image_size=32)
    assert m.spec.source == "torchscript"
    x = torch.rand(2, 3, 32, 32)
    ref = pa.models.load("tiny-cnn").logits(x)
    assert torch.allclose(m.extractor(["output"])(x)["output"], ref, atol=1e-6)
    with pytest.raises(UnknownNameError, match="TorchScript"):
        m.resolve_layer("block1")


def test_wrong_channel_count_is_a_shape_error():
    m = pa.models.load("tiny-cnn")
    with pytest.raises(pa.errors.InputShapeError, match=r"\(N, 3, H, W\)"):
        m.logits(torch.rand(2, 1, 32, 32))
