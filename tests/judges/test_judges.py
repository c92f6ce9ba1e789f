"""Judges, the paper's metric on hand-made runs with known answers, bots, the judge CLI."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import percalign as pa
from percalign.errors import (
    ConfigError,
    MissingExtraError,
    UnknownNameError,
    WeightsNotFoundError,
)
from percalign.inversion import InversionConfig, InversionResult
from percalign.judges import (
    LPIPS,
    MSSSIM,
    SSIM,
    Bot,
    Ensemble,
    Judge,
    ModelFeatures,
    PixelL2,
    bootstrap_ci,
    get_judge,
    judge_run,
    summarize,
)
from percalign.store import save_run
from percalign.store.runs import read_run


class _Lpips(Judge):
    """LPIPS on a tiny random backbone with uniform heads (no weights needed)."""

    name = "lpips-tiny"

    def __init__(self) -> None:
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()
        )
        self.net = LPIPS(net, heads="uniform", taps=(1, 3))

    def distance(self, a, b):
        return self.net(a, b)


def _judges():
    return [PixelL2(), SSIM(), MSSSIM(), ModelFeatures(pa.models.load("tiny-cnn")), _Lpips()]


@pytest.mark.parametrize("judge", _judges(), ids=lambda j: j.name)
def test_identity_symmetry_and_ordering(judge):
    torch.manual_seed(1)
    x = torch.rand(4, 3, 32, 32)
    x = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    assert torch.allclose(judge(x, x), torch.zeros(4), atol=1e-5)
    y = torch.rand(4, 3, 32, 32)
    if judge.symmetric:
        torch.testing.assert_close(judge(x, y), judge(y, x), atol=1e-5, rtol=1e-4)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    noise = torch.rand(4, 3, 32, 32)
    assert (judge(x, blurred) < judge(x, noise)).all()


@pytest.mark.parametrize("judge", _judges(), ids=lambda j: j.name)
def test_grayscale_inputs(judge):
    g = torch.rand(2, 1, 32, 32)
    assert judge(g, g.expand(-1, 3, -1, -1).contiguous()).abs().max() < 1e-4


@pytest.mark.parametrize(
    "shape", [(6, 1, 32, 32), (4, 3, 32, 32), (3, 3, 64, 40), (2, 3, 6, 7)], ids=str
)
def test_ssim_is_torchmetrics_ssim_with_its_gradient(shape):
    # the reference implementation: same window, constants, edges and mean
    from skimage import data
    from torchmetrics.functional.image import structural_similarity_index_measure as reference

    gen = torch.Generator().manual_seed(3)
    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    h, w = shape[-2:]
    a = torch.stack([photo[: shape[1], 40 * i : 40 * i + h, 50 : 50 + w] for i in range(shape[0])])
    b = (a + 0.2 * torch.randn(a.shape, generator=gen)).clamp(0, 1)
    # in float64 the two agree to rounding: the same definition
    exact = SSIM().distance(a.double(), b.double())
    torch.testing.assert_close(
        exact, 1 - reference(a.double(), b.double(), data_range=1.0, reduction="none")
    )
    a.requires_grad_(True)
    ours = SSIM().distance(a, b)
    theirs = 1 - reference(a, b, data_range=1.0, reduction="none")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    (g_ours,) = torch.autograd.grad(ours.sum(), a)
    (g_theirs,) = torch.autograd.grad(theirs.sum(), a)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-4, atol=1e-7)
    assert 0.05 < float(ours.detach().mean()) < 1.0  # noisy copies: neither identical nor unrelated


def test_ssim_blur_matrix_is_the_padded_gaussian_convolution():
    from percalign.judges.simple import blur_matrix

    x = torch.rand(2, 1, 9, 1)
    radius = 5
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-0.5 * (offsets / 1.5) ** 2)
    padded = torch.nn.functional.pad(x, (0, 0, radius, radius), mode="reflect")
    conv = torch.nn.functional.conv2d(padded, (g / g.sum()).view(1, 1, -1, 1))
    torch.testing.assert_close(blur_matrix(9, 1.5).float() @ x, conv)
    # shorter than the radius: mirrored again, still a weighted average
    assert torch.allclose(blur_matrix(3, 1.5).sum(dim=1), torch.ones(3, dtype=torch.float64))


def test_model_judge_on_a_one_channel_model_reads_colour_as_grey():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    model = pa.models.from_module(net, mean=(0.5,), std=(0.5,), input_size=16)
    judge = ModelFeatures(model, metric="l2")
    rgb = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(judge(rgb, rgb.mean(1, keepdim=True)), torch.zeros(2))
    assert judge.name == "model:module:penultimate:l2" and not judge.symmetric


def _handmade_run(tmp_path, iris_from):
    """Four distinct targets; IRIs are copies of their target, or of their seed."""
    targets = torch.zeros(4, 1, 32, 32)
    for t in range(4):  # a bar at a different place in each target
        targets[t, :, 4 + 6 * t : 8 + 6 * t, :] = 1.0
    seeds = torch.rand(4, 1, 32, 32)
    iris = targets.clone() if iris_from == "target" else seeds.clone()
    result = InversionResult(
        iris=iris,
        seeds=seeds,
        targets=targets,
        target_index=torch.arange(4),
        seed_kind=["super-noise"] * 4,
        seed_copy=[0] * 4,
        seed_source=[None] * 4,
        objective=["penultimate"] * 4,
        distance=torch.zeros(4),
        layer_distance={"penultimate": torch.zeros(4)},
        seed_distance=torch.ones(4),
        steps_taken=torch.zeros(4, dtype=torch.long),
        first_valid_step=torch.zeros(4, dtype=torch.long),
        at_zero=(iris == 0).flatten(1).float().mean(1),
        at_one=(iris == 1).flatten(1).float().mean(1),
        curve_steps=[0],
        curves=torch.zeros(4, 1),
        config=InversionConfig(steps=1),
    )
    out = tmp_path / iris_from
    save_run(
        out,
        result,
        model=pa.models.load("tiny-cnn"),
        target_ids=[f"t{i}" for i in range(4)],
        target_labels=[0, 1, 2, 3],
    )
    return out


def test_metric_on_runs_with_known_answers(tmp_path):
    perfect = judge_run(read_run(_handmade_run(tmp_path, "target")), [PixelL2(), SSIM()], k=4)
    assert perfect["seed_2afc"].all() and perfect["other_2afc"].all() and perfect["matching"].all()
    assert len(perfect) == 8 and set(perfect["k"]) == {4}
    copies = judge_run(read_run(_handmade_run(tmp_path, "seed")), [PixelL2()], k=4)
    assert not copies["seed_2afc"].any()
    summary = summarize(perfect, n_boot=200)
    assert (summary["seed_2afc"] == 100).all() and (summary["seed_2afc_hi"] == 100).all()
    # all IRIs right: the exact (Clopper-Pearson) bound over the 4 targets, not [100, 100]
    assert summary["seed_2afc_lo"].to_numpy() == pytest.approx(100 * 0.025 ** (1 / 4))


def test_bootstrap_ci_contains_the_mean_and_narrows_with_data():
    rng = torch.Generator().manual_seed(0)
    small = (torch.rand(40, generator=rng) < 0.3).double().numpy()
    large = (torch.rand(4000, generator=rng) < 0.3).double().numpy()
    lo, hi = bootstrap_ci(small, 2000, seed=1)
    assert lo <= small.mean() <= hi
    lo2, hi2 = bootstrap_ci(large, 2000, seed=1)
    assert hi2 - lo2 < hi - lo
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_bots_reproduce_their_judge_without_noise():
    torch.manual_seed(2)
    q, a, b = torch.rand(50, 3, 16, 16), torch.rand(50, 3, 16, 16), torch.rand(50, 3, 16, 16)
    judge = PixelL2()
    assert torch.equal(Bot(judge).two_afc(q, a, b), judge.two_afc(q, a, b))
    refs = torch.rand(50, 4, 3, 16, 16)
    assert torch.equal(Bot(judge).match(q, refs), judge.match(q, refs))
    lapsing = Bot(judge, lapse=1.0, seed=3).two_afc(q, a, b)
    assert 10 < int((lapsing != judge.two_afc(q, a, b)).sum()) < 40
    noisy = Bot(judge, temperature=10.0, seed=4)
    again = Bot(judge, temperature=10.0, seed=4)
    assert torch.equal(noisy.two_afc(q, a, b), again.two_afc(q, a, b))
    with pytest.raises(ConfigError, match="'lapse' parameter"):
        Bot(judge, lapse=1.5)


class _Fixed(Judge):
    """A judge whose distances are given up front (one value per query and candidate)."""

    def __init__(self, name, first, second):
        self.name, self.values = name, [first, second]
        self.calls = 0

    def distance(self, a, b):
        value = self.values[self.calls % 2]
        self.calls += 1
        return torch.tensor(value, dtype=torch.float32)


def test_ensemble_majority_vote():
    x = torch.zeros(3, 1, 2, 2)
    # per query: judge A prefers [first, second, first], B [second, second, first], C [first...]
    a = _Fixed("a", [0.0, 1.0, 0.0], [1.0, 0.0, 1.0])
    b = _Fixed("b", [1.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    c = _Fixed("c", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert Ensemble([a, b, c]).two_afc(x, x, x).tolist() == [0, 1, 0]
    tie = Ensemble([_Fixed("a", [0.0] * 3, [1.0] * 3), _Fixed("b", [1.0] * 3, [0.0] * 3)])
    assert tie.two_afc(x, x, x).tolist() == [0, 0, 0]  # ties go to the first member
    with pytest.raises(ConfigError, match="at least two"):
        Ensemble([PixelL2()])


def test_judge_names_and_missing_weights():
    assert get_judge("ms-ssim").name == "ms-ssim"
    with pytest.raises(UnknownNameError, match="Did you mean 'ssim'"):
        get_judge("sssim")
    with pytest.raises(WeightsNotFoundError, match=r"alexnet-owt-7be5be79\.pth"):
        get_judge("lpips-alex")
    with pytest.raises(ConfigError, match="model:NAME"):
        get_judge("model:")
    with pytest.raises(UnknownNameError, match="Unknown model"):
        get_judge("model:no-such-model")
    with pytest.raises(MissingExtraError, match=r"pip install 'percalign\[dreamsim\]'") as e:
        get_judge("dreamsim")  # the dreamsim package is not installed here
    assert isinstance(e.value, ImportError) and e.value.extra == "dreamsim"


@pytest.mark.slow
def test_judge_cli_acceptance(tmp_path, capsys):
    from percalign.cli import main
    from percalign.training import TrainConfig, save_checkpoint, train

    net, meta, kept = train(
        TrainConfig(recipe="adv-l2", epochs=1, limit=128, batch_size=64, width=8, eval_images=8)
    )
    save_checkpoint("digits-cnn-adv", net, meta, kept, overwrite=True)
    out = tmp_path / "OUT"
    assert (
        main(
            [
                "invert",
                "--model",
                "digits-cnn-adv",
                "--images",
                "digits",
                "--n-images",
                "6",
                "--seeds",
                "super-noise,image",
                "--steps",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["judge", str(out), "--judges", "pixel,ssim,model:digits-cnn-adv"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "judgments.csv")
    assert len(table) == 12 * 3
    assert set(table["judge"]) == {"pixel", "ssim", "model:digits-cnn-adv"}
    assert {"d_target", "d_seed", "seed_2afc", "other_2afc", "matching"} <= set(table.columns)
    assert "vs seed (paper)" in printed and "paper metric over 3 judges" in printed


def test_the_registry_lists_the_judges_and_builds_them_by_name():
    from percalign import judges

    assert judges.names() == [
        "dreamsim",
        "lpips-alex",
        "lpips-alex-random",
        "lpips-squeeze",
        "lpips-squeeze-random",
        "lpips-vgg",
        "lpips-vgg-random",
        "ms-ssim",
        "pixel",
        "ssim",
        "model:NAME",
    ]
    assert tuple(judges.names()) == judges.JUDGE_NAMES
    assert set(judges.summaries()) == set(judges.names())
    assert all(judges.summaries().values())
    assert [type(get_judge(n)).__name__ for n in ("pixel", "ssim", "ms-ssim")] == [
        "PixelL2",
        "SSIM",
        "MSSSIM",
    ]
    assert get_judge("model:tiny-cnn:penultimate:l2").name == "model:tiny-cnn:penultimate:l2"


def test_a_new_judge_is_one_class_and_one_decorator(monkeypatch):
    from percalign.judges import Judge, differentiable_names, judge, names, registry
    from percalign.judges.registry import add_judge, as_adversary

    @judge("coin", summary="a judge without gradients (test)")
    class Coin(Judge):
        name = "coin"
        differentiable = False

        def distance(self, a, b):
            return torch.zeros(len(a))

    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._entries()))
    add_judge(Coin)
    assert "coin" in names() and "coin" not in differentiable_names()
    assert isinstance(get_judge("coin"), Coin)
    with pytest.raises(ConfigError, match=r"use a differentiable one: .*pixel") as e:
        as_adversary(get_judge("coin"))
    assert "coin," not in str(e.value) and "dreamsim" in str(e.value)
    with pytest.raises(ConfigError, match="not marked with @judge"):
        add_judge(type("Plain", (Judge,), {"distance": lambda self, a, b: a}))


def test_importing_a_judge_module_registers_nothing():
    import subprocess
    import sys

    code = (
        "import percalign.judges.simple, percalign.judges.lpips, percalign.judges.features;"
        " from percalign.judges import registry; print(len(registry._ENTRIES))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_the_readme_names_every_registered_judge():
    from pathlib import Path

    from percalign.judges import names

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [n for n in names() if f"`{n.replace(':NAME', ':NAME[')}" not in readme]
    assert not missing, f"README.md does not list the judges {missing}"


def test_an_image_seeded_iris_other_target_is_never_its_own_seed_image():
    from percalign.judges.metric import RunImages, _others

    n = 6
    ids = [f"digits/{i:04d}" for i in range(n)]
    # each IRI is seeded by the next target's image: the seed source is also a target
    records = [
        {"target_index": t, "seed_source_id": ids[(t + 1) % n], "seed_type": "image"}
        for t in range(n)
        for _ in range(20)
    ]
    run = RunImages(
        folder=Path("."),
        records=records,
        iris=torch.zeros(len(records), 1, 4, 4),
        seeds=torch.zeros(len(records), 1, 4, 4),
        targets=torch.zeros(n, 1, 4, 4),
        target_ids=ids,
        target_labels=[None] * n,
    )
    for k in (2, 4):
        picked = _others(run, k, seed=0)
        for rec, others in zip(records, picked, strict=True):
            assert len(others) == k - 1 and rec["target_index"] not in others
            assert rec["seed_source_id"] not in {ids[j] for j in others}
    # the randomness still reaches every allowed target
    assert {o[0] for o in _others(run, 2, seed=0)[:20]} == {2, 3, 4, 5}
    # two targets in all: the seed image is the only other target there is
    two = RunImages(
        folder=Path("."),
        records=[{"target_index": 0, "seed_source_id": ids[1]}],
        iris=torch.zeros(1, 1, 4, 4),
        seeds=torch.zeros(1, 1, 4, 4),
        targets=torch.zeros(2, 1, 4, 4),
        target_ids=ids[:2],
        target_labels=[None, None],
    )
    assert _others(two, 2, seed=0) == [[1]]
