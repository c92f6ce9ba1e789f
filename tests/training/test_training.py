"""Each recipe on a small subset of the digits, the zoo round trip, datasets."""

import pickle

import numpy as np
import pytest
import torch

import percalign as pa
from percalign.errors import ConfigError, MissingFileError, UnknownNameError
from percalign.models.archs import ARCHS, build_arch
from percalign.training import TrainConfig, save_checkpoint, train
from percalign.training.datasets import load_dataset

QUICK = dict(epochs=2, limit=256, batch_size=64, width=8, eval_images=16, probe_epochs=50)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("recipe", "extra"),
    [
        ("standard", {}),
        ("adv-l2", {"eps": 1.0}),
        ("adv-linf", {}),
        ("trades", {"beta": 1.0}),
        ("simclr", {}),
        ("simclr", {"adv_views": True, "simclr_augment": "no-colour"}),
        ("supervised-simclr-aug", {}),
    ],
)
def test_each_recipe_lowers_its_loss(recipe, extra):
    epochs = []
    net, meta, _ = train(
        TrainConfig(recipe=recipe, **{**QUICK, "epochs": 3}, **extra), progress=epochs.append
    )
    assert epochs[-1].loss < epochs[0].loss
    assert 0 <= meta["clean_accuracy"] <= 1 and set(meta["robust_accuracy"]) == {
        "l2_eps1",
        "linf_eps0.03137",
    }
    assert meta["recipe"] == recipe and meta["in_chans"] == 1 and not net.training


def test_training_is_reproducible():
    a, _, _ = train(TrainConfig(**{**QUICK, "epochs": 1}))
    b, _, _ = train(TrainConfig(**{**QUICK, "epochs": 1}))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_zoo_round_trip_and_intermediate_epochs(capsys):
    net, meta, kept = train(TrainConfig(**{**QUICK, "epochs": 2, "save_every": 1}))
    assert list(kept) == [1]
    save_checkpoint("zoo-test-cnn", net, meta, kept, overwrite=True)
    model = pa.models.load("zoo-test-cnn")
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        ref = net(
            (x - torch.tensor(meta["mean"]).view(1, -1, 1, 1))
            / torch.tensor(meta["std"]).view(1, -1, 1, 1)
        )
    torch.testing.assert_close(model.logits(x), ref, rtol=0, atol=0)
    assert model.spec.source == "zoo" and model.spec.extra["recipe"] == "standard"
    early = pa.models.load("zoo-test-cnn@1")
    assert early.weights_sha256 != model.weights_sha256
    assert "zoo-test-cnn@1" in pa.models.list_models()
    with pytest.raises(UnknownNameError, match="epoch"):
        pa.models.load("zoo-test-cnn@7")
    from percalign.cli import main

    assert main(["models", "show", "zoo-test-cnn"]) == 0
    shown = capsys.readouterr().out
    assert "recipe" in shown and "clean_accuracy" in shown and "1 x 32 x 32" in shown


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_architectures_build_and_expose_a_penultimate(arch):
    net, head, _pool = build_arch(arch, 3, 10, width=8, image_size=32)
    logits = net(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    assert isinstance(dict(net.named_modules())[head], torch.nn.Linear)


def test_tiny_cifar_file_written_by_the_test(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, 4).tolist(),
        }
        with open(base / name, "wb") as fh:
            pickle.dump(batch, fh)
    train_set = load_dataset("cifar10", "train", tmp_path)
    assert train_set.images.shape == (20, 3, 32, 32) and train_set.num_classes == 10
    assert load_dataset("cifar10", "test", tmp_path).images.shape[0] == 4
    with pytest.raises(MissingFileError, match="cifar-100-python"):
        load_dataset("cifar100", "train", tmp_path)


def test_bad_training_settings():
    with pytest.raises(UnknownNameError, match="Did you mean 'trades'"):
        TrainConfig(recipe="trade")
    with pytest.raises(UnknownNameError, match="Did you mean 'small-cnn'"):
        TrainConfig(arch="small-cn")
    with pytest.raises(ConfigError, match="'eps' parameter"):
        TrainConfig(recipe="adv-l2", eps=-1.0)
    with pytest.raises(UnknownNameError, match="Did you mean 'digits'"):
        load_dataset("digit")


def test_class_folder_dataset_at_its_own_size(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for cls, value in (("a", 30), ("b", 220)):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(6):
                Image.new("RGB", (20, 20), (value, value, i * 10)).save(
                    tmp_path / split / cls / f"{i}.png"
                )
    _net, meta, _ = train(
        TrainConfig(
            dataset=str(tmp_path), epochs=2, batch_size=4, width=4, eval_images=4, image_size=16
        )
    )
    assert meta["image_size"] == 16 and meta["num_classes"] == 2 and meta["in_chans"] == 3
    assert meta["train_images"] == 12


def test_loader_workers_give_the_batches_of_direct_indexing():
    from percalign.training.trainer import _Loader

    data = load_dataset("digits", "train").subset(torch.arange(100))
    order = [torch.randperm(100, generator=torch.Generator().manual_seed(s))[:48] for s in (0, 1)]
    batches = [order[0][:16], order[0][16:], order[1][:32]]
    direct = list(_Loader(data, torch.device("cpu"), workers=False).epoch(batches))
    pooled = _Loader(data, torch.device("cpu"), workers=True)  # the CUDA path, without pinning
    # two epochs through the same workers: the sampler's batches change between them
    got = list(pooled.epoch(batches[:2])) + list(pooled.epoch(batches[2:]))
    assert len(got) == len(direct) == 3
    for (x, y), (x2, y2) in zip(direct, got, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_train_runs_on_the_given_device_and_returns_a_cpu_network():
    net, meta, _ = train(TrainConfig(**{**QUICK, "epochs": 1, "limit": 64}), device="cpu")
    assert meta["device"] == "cpu"
    assert all(p.device.type == "cpu" for p in net.parameters())
    with pytest.raises(UnknownNameError, match="Did you mean 'cuda'"):
        train(TrainConfig(**QUICK), device="cdua")


def test_training_does_not_depend_on_the_global_random_state():
    # a worker process trains after other tasks, so its global generator is anywhere
    cfg = TrainConfig(recipe="simclr", **{**QUICK, "epochs": 1, "probe_epochs": 5})
    torch.manual_seed(1)
    first, _, _ = train(cfg)
    torch.manual_seed(2)
    torch.rand(7)
    second, _, _ = train(cfg)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
