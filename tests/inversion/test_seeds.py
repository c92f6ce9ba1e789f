import pytest
import torch

import percalign as pa
from percalign._random import stream
from percalign.errors import ConfigError, UnknownNameError
from percalign.inversion import InversionConfig, SeedSpec, invert, parse_seeds, quantize
from percalign.inversion.seeds import make_seed


def test_parse_seed_specs():
    assert parse_seeds("super-noise,image:2") == (SeedSpec("super-noise"), SeedSpec("image", 2))
    with pytest.raises(UnknownNameError, match="Did you mean 'super-noise'"):
        parse_seeds("supernoise")
    with pytest.raises(ConfigError, match="integer"):
        parse_seeds("image:x")
    with pytest.raises(ConfigError, match="'count' parameter"):
        parse_seeds("image:0")


def test_noise_seeds_follow_the_paper():
    shape = (3, 64, 64)
    sup, _ = make_seed("super-noise", shape, stream(1), 0)
    # raw N(0, 1): the model sees it through its input clamp, half the pixels at 0
    assert abs(float(sup.mean())) < 0.05 and abs(float(sup.std()) - 1) < 0.05
    shown = quantize(sup)
    assert 0.45 < (shown == 0).float().mean() < 0.55 and shown.max() == 1.0
    light, _ = make_seed("light-noise", shape, stream(1), 0)
    assert abs(float(light.std()) - 0.01) < 0.001
    assert light.max() < 0.06 and 0.45 < (light <= 0).float().mean() < 0.55
    for kind, value in (("white", 1.0), ("black", 0.0), ("grey", 0.5)):
        assert torch.all(make_seed(kind, shape, stream(1), 0)[0] == value)


def test_image_seeds_differ_from_the_target_and_prefer_another_label():
    pool = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 3, 2, 2) / 10
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for target in range(6):
        for copy in range(4):
            img, src = make_seed(
                "image",
                (3, 2, 2),
                stream("t", target),
                target,
                pool=pool,
                pool_labels=labels,
                target_label=int(labels[target]),
                copy=copy,
            )
            assert src != target and labels[src] != labels[target]
            assert torch.equal(img, pool[src])
    with pytest.raises(ConfigError, match="at least 6 other images"):
        make_seed("image", (3, 2, 2), stream(0), 0, pool=pool, copy=5)


def test_copies_of_image_seeds_are_distinct():
    model = pa.models.load("tiny-cnn")
    targets = torch.rand(12, 3, 32, 32)
    r = invert(model, targets, seeds="image:3", config=InversionConfig(steps=1))
    for t in range(12):
        sources = [r.seed_source[i] for i in range(len(r)) if r.target_index[i] == t]
        assert len(set(sources)) == 3 and t not in sources


def test_shared_noise_is_one_image_for_all_targets():
    model = pa.models.load("tiny-cnn")
    targets = torch.rand(3, 3, 32, 32)
    shared = invert(model, targets, config=InversionConfig(steps=1, share_seeds=True))
    assert torch.equal(shared.seeds[0], shared.seeds[2])
    own = invert(model, targets, config=InversionConfig(steps=1))
    assert not torch.equal(own.seeds[0], own.seeds[2])


def test_separate_seed_pool_with_its_own_labels():
    model = pa.models.load("tiny-cnn")
    targets = torch.rand(3, 3, 32, 32)
    pool = torch.randint(0, 256, (10, 3, 32, 32)) / 255  # 8-bit levels: seeds keep them exactly
    r = invert(
        model,
        targets,
        seeds="image",
        labels=torch.tensor([0, 1, 2]),
        seed_images=pool,
        seed_labels=torch.tensor([0] * 9 + [5]),
        config=InversionConfig(steps=1),
    )
    assert r.seed_source[0] == 9  # the only pool image whose label differs from target 0's
    # targets 1 and 2 (labels 1, 2) may take any pool image: each is of another label
    assert all(s is not None and 0 <= s < len(pool) for s in r.seed_source)
    for row, source in enumerate(r.seed_source):
        assert torch.equal(r.seeds[row], pool[source])  # the seed is that pool image
    with pytest.raises(pa.errors.InputShapeError, match="labels for 3 targets"):
        invert(model, targets, labels=torch.tensor([0, 1]), config=InversionConfig(steps=1))
