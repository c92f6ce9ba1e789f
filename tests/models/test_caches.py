"""Pretrained weights from the caches users already have, offline: torchvision's
``$TORCH_HOME/hub/checkpoints``, the Hugging Face hub cache (timm), robustness-library
checkpoints of the paper's CIFAR architectures. Every file is written by the test itself."""

import time

import pytest
import torch

import percalign as pa
from percalign.cli import main
from percalign.errors import UnknownNameError, WeightsError, WeightsNotFoundError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _random_state(build, seed):
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in build().state_dict().items()}


def _assert_weights(model, expected):
    got = model.module.state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0)


@pytest.fixture
def no_downloads(monkeypatch):
    """Any attempt to download fails the test (and is recorded)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access: {args}")

    import huggingface_hub
    import timm.models._hub as timm_hub

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(timm_hub, "hf_hub_download", refuse)
    return calls


def test_torchvision_enum_loads_from_torch_home_offline(tmp_path, monkeypatch, no_downloads):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    enum = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    state = _random_state(lambda: torchvision.models.resnet18(weights=None), seed=3)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(state, folder / enum.url.rsplit("/", 1)[1])  # resnet18-f37072fd.pth

    model = pa.models.load("resnet18", weights="IMAGENET1K_V1")
    _assert_weights(model, state)
    assert model.spec.weights.startswith("IMAGENET1K_V1 (resnet18-f37072fd.pth)")
    assert model.spec.mean == pytest.approx((0.485, 0.456, 0.406))
    assert no_downloads == []
    # the same through the CLI's --weights
    assert main(["models", "show", "resnet18", "--weights", "IMAGENET1K_V1", "--depth", "0"]) == 0


def _hf_cache_file(root, repo, filename):
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    return snapshot / filename


def test_timm_loads_from_a_hugging_face_cache_offline(tmp_path, monkeypatch, no_downloads):
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    state = _random_state(lambda: timm.create_model("test_resnet", pretrained=False), seed=5)
    repo = "timm/test_resnet.r160_in1k"
    path = _hf_cache_file(tmp_path / "hf" / "hub", repo, "model.safetensors")
    save_file(state, str(path))

    model = pa.models.load("timm:test_resnet")  # the default tag, r160_in1k
    _assert_weights(model, state)
    assert model.spec.source == "timm" and model.spec.weights.startswith("pretrained")
    assert no_downloads == []


def test_timm_offline_without_cache_fails_at_once(tmp_path, monkeypatch, no_downloads):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    started = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match="not in the Hugging Face cache") as info:
        pa.models.load("timm:test_vit")
    assert no_downloads == []  # refused before asking the hub (which retries for ~30 s)
    assert "models--timm--test_vit" in str(info.value) and "\n" not in str(info.value)
    assert time.perf_counter() - started < 60  # generous: only a hang would fail this


def test_timm_unknown_pretrained_tag_names_close_ones():
    with pytest.raises(UnknownNameError, match=r"test_resnet\.r160_in1k"):
        pa.models.load("timm:test_resnet.r160_in1kk")


def _robustness_ckpt(state, renames):
    sd = {}
    for key, value in state.items():
        for old, new in renames:
            key = key.replace(old, new)
        sd[f"module.model.{key}"] = value
        sd[f"module.attacker.model.{key}"] = torch.zeros_like(value)
    sd["module.normalizer.new_mean"] = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
    sd["module.normalizer.new_std"] = torch.tensor([0.2023, 0.1994, 0.2010]).view(3, 1, 1)
    return {"model": sd, "epoch": 150, "schedule": None}


@pytest.mark.parametrize(
    ("name", "renames"),
    [
        # the robustness library's CIFAR ResNet names its shortcut and classifier differently
        ("cifar-resnet18", [(".downsample.", ".shortcut."), ("fc.", "linear.")]),
        ("cifar-vgg16", [("classifier.0.", "classifier.")]),
        ("cifar-resnet18", []),  # a checkpoint saved from our own architecture
    ],
)
def test_robustness_cifar_checkpoints(tmp_path, name, renames):
    state = _random_state(lambda: pa.models.load(name).module, seed=11)
    path = tmp_path / "cifar_l2_1_0.pt"
    torch.save(_robustness_ckpt(state, renames), path)
    model = pa.models.load(name, weights=f"robust_l2_eps1:{path}")
    _assert_weights(model, state)
    assert model.spec.input_size == (32, 32) and model.spec.num_classes == 10
    assert model.spec.mean == pytest.approx((0.4914, 0.4822, 0.4465))
    assert model.spec.extra["checkpoint_layout"] == "robustness"


def test_a_plain_state_dict_with_the_robustness_cifar_names_is_renamed(tmp_path):
    state = _random_state(lambda: pa.models.load("cifar-resnet18").module, seed=5)
    robust = {
        k.replace(".downsample.", ".shortcut.").replace("fc.", "linear."): v
        for k, v in state.items()
    }
    assert any(".shortcut." in k for k in robust) and "linear.weight" in robust
    path = tmp_path / "plain_robust_names.pt"
    torch.save(robust, path)
    model = pa.models.load("cifar-resnet18", weights=str(path))
    _assert_weights(model, state)
    assert model.spec.extra["checkpoint_layout"] == "state_dict"


@pytest.mark.parametrize("attacker", [False, True])
def test_the_authors_lightning_checkpoints(tmp_path, attacker):
    """Their training library saves a Lightning module: the network under ``model.`` (with the
    robustness CIFAR names), its normalizer, and for adversarial training an attacker copy."""
    state = _random_state(lambda: pa.models.load("cifar-resnet18").module, seed=9)
    robust = {
        k.replace(".downsample.", ".shortcut.").replace("fc.", "linear."): v
        for k, v in state.items()
    }
    sd = {f"model.{k}": v for k, v in robust.items()}
    sd["normalizer.new_mean"] = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    sd["normalizer.new_std"] = torch.tensor([0.2023, 0.1994, 0.2010]).view(1, 3, 1, 1)
    if attacker:
        sd.update({f"attacker.model.{k}": torch.zeros_like(v) for k, v in robust.items()})
        sd["attacker.normalize.new_mean"] = sd["normalizer.new_mean"].clone()
        sd["attacker.normalize.new_std"] = sd["normalizer.new_std"].clone()
    ckpt = {
        "epoch": 199,
        "global_step": 78000,
        "pytorch-lightning_version": "1.5.10",
        "state_dict": sd,
        "hyper_parameters": {"lr": 0.1, "arch": "resnet18"},
    }
    path = tmp_path / "epoch=199.ckpt"
    torch.save(ckpt, path)
    model = pa.models.load("cifar-resnet18", weights=f"adv_l2_eps1:{path}")
    _assert_weights(model, state)
    assert model.spec.extra["checkpoint_layout"] == "lightning"
    assert model.spec.std == pytest.approx((0.2023, 0.1994, 0.2010))


def test_a_checkpoint_that_fits_no_layout_names_its_first_keys(tmp_path):
    state = _random_state(lambda: pa.models.load("cifar-resnet18").module, seed=5)
    path = tmp_path / "other.pt"
    torch.save({"net." + k.replace("conv1", "stem"): v for k, v in state.items()}, path)
    with pytest.raises(WeightsError) as info:
        pa.models.load("cifar-resnet18", weights=str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "missing (first 'conv1.weight')" in message
    assert "unexpected (first 'stem.weight')" in message


def test_robustness_imagenet_checkpoint_into_torchvision(tmp_path):
    import torchvision

    state = _random_state(lambda: torchvision.models.resnet18(weights=None), seed=2)
    path = tmp_path / "imagenet_l2_3_0.pt"
    torch.save(_robustness_ckpt(state, []), path)
    model = pa.models.load("resnet18", weights=f"robust_l2_eps3:{path}")
    _assert_weights(model, state)
    assert model.spec.input_size == (224, 224)


def test_cifar_names_differ_from_torchvision_imagenet_models():
    cifar = pa.models.load("cifar-resnet18")
    imagenet = pa.models.load("resnet18", weights="none")
    assert cifar.spec.source == "cifar" and cifar.spec.input_size == (32, 32)
    assert imagenet.spec.source == "torchvision" and imagenet.spec.input_size == (224, 224)
    assert isinstance(cifar.module.conv1, torch.nn.Conv2d)
    assert cifar.module.conv1.kernel_size == (3, 3) and imagenet.module.conv1.kernel_size == (7, 7)
    with pytest.raises(UnknownNameError, match="cifar-resnet18"):
        pa.models.load("cifar-resnet81")


def test_old_arch_names_still_train_and_rebuild():
    from percalign.models.archs import arch_name, build_arch
    from percalign.training import TrainConfig

    assert arch_name("resnet18") == "cifar-resnet18"
    assert TrainConfig(arch="vgg16").arch == "vgg16"  # kept as written: old zoo keys still match
    net, head, _ = build_arch("densenet121", 3, 10, width=4)
    assert head == "classifier" and type(net).__name__ == "DenseNet"
