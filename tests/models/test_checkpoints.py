"""Weights files in every supported layout, written by the tests themselves."""

import argparse

import pytest
import torch

import percalign as pa
from percalign import _paths
from percalign.errors import WeightsError, WeightsNotFoundError


@pytest.fixture
def source():
    """A tiny ResNet with non-default weights, and an input to compare outputs on."""
    model = pa.models.load("tiny-resnet", seed=7)
    return model, torch.rand(2, 3, 32, 32)


def _same_outputs(a, b, x):
    torch.testing.assert_close(a.module(x), b.module(x), rtol=0, atol=0)


def test_robustness_library_layout(tmp_path, source):
    model, x = source
    sd = model.module.state_dict()
    ckpt = {
        "model": {
            **{f"module.model.{k}": v for k, v in sd.items()},
            **{f"module.attacker.model.{k}": torch.zeros_like(v) for k, v in sd.items()},
            "module.normalizer.new_mean": torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1),
            "module.normalizer.new_std": torch.tensor([0.2023, 0.1994, 0.2010]).view(3, 1, 1),
        },
        "epoch": 150,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
    }
    path = tmp_path / "cifar_l2_1_0.pt"
    torch.save(ckpt, path)
    loaded = pa.models.load("tiny-resnet", weights=f"robust_l2_eps1:{path}")
    _same_outputs(model, loaded, x)
    assert loaded.spec.mean == pytest.approx((0.4914, 0.4822, 0.4465))
    assert loaded.spec.std == pytest.approx((0.2023, 0.1994, 0.2010))
    assert loaded.spec.weights.startswith("robust_l2_eps1:")
    assert loaded.spec.extra["checkpoint_layout"] == "robustness"
    assert loaded.weights_sha256 == model.weights_sha256


@pytest.mark.parametrize("layout", ["plain", "state_dict", "dataparallel", "safetensors"])
def test_plain_layouts_round_trip(tmp_path, source, layout):
    model, x = source
    sd = model.module.state_dict()
    if layout == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        obj = {
            "plain": sd,
            "state_dict": {"state_dict": sd, "epoch": 3},
            "dataparallel": {f"module.{k}": v for k, v in sd.items()},
        }[layout]
        path = tmp_path / "w.pth"
        torch.save(obj, path)
    loaded = pa.models.load("tiny-resnet", weights=str(path))
    _same_outputs(model, loaded, x)
    assert loaded.spec.extra["checkpoint_layout"] == "state_dict"


def test_mismatched_weights_name_the_keys(tmp_path):
    path = tmp_path / "cnn.pt"
    torch.save(pa.models.load("tiny-cnn").module.state_dict(), path)
    with pytest.raises(WeightsError, match=r"do not fit model 'tiny-resnet'.*missing"):
        pa.models.load("tiny-resnet", weights=str(path))


def test_pickled_objects_need_allow_pickle(tmp_path, source):
    model, x = source
    path = tmp_path / "with_args.pt"
    torch.save({"model": model.module.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(WeightsError, match="allow_pickle=True"):
        pa.models.load("tiny-resnet", weights=str(path))
    _same_outputs(model, pa.models.load("tiny-resnet", weights=str(path), allow_pickle=True), x)


def test_file_without_state_dict(tmp_path):
    path = tmp_path / "junk.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(WeightsError, match="holds no state dict"):
        pa.models.load("tiny-cnn", weights=str(path))


def test_missing_file(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        pa.models.load("tiny-cnn", weights=str(tmp_path / "nope.pt"))


def test_url_weights_come_from_the_cache_offline(source):
    model, x = source
    url = "https://example.org/checkpoints/tiny_resnet_adv.pt"
    cached = _paths.weights_cache() / "tiny_resnet_adv.pt"
    cached.unlink(missing_ok=True)
    with pytest.raises(WeightsNotFoundError, match=str(cached)):
        pa.models.load("tiny-resnet", weights=url)
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.module.state_dict(), cached)
    _same_outputs(model, pa.models.load("tiny-resnet", weights=url), x)
    cached.unlink()
