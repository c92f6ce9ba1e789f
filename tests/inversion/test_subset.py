"""invert(only_targets=, only_objectives=): a part of a call is bitwise that part of the call."""

import pytest
import torch

import percalign as pa
from percalign.errors import InputShapeError
from percalign.inversion import InversionConfig, invert

LAYERS = ["penultimate", "features.0"]


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A differentiable stand-in for LPIPS (no weights needed)."""
    return (a - b).pow(2).flatten(1).mean(1)


@pytest.fixture(scope="module")
def vgg():
    return pa.models.load("tiny-vgg")


def _rows(result, targets, objectives):
    names = [LAYERS[o] for o in objectives]
    return [
        i
        for i in range(len(result))
        if int(result.target_index[i]) in targets and result.objective[i] in names
    ]


def _assert_same_rows(whole, part, rows):
    for name in ("iris", "seeds", "distance", "seed_distance", "steps_taken", "curves"):
        assert torch.equal(getattr(whole, name)[rows], getattr(part, name)), name
    assert torch.equal(whole.target_index[rows], part.target_index)
    for name in ("seed_kind", "seed_copy", "seed_source", "objective"):
        assert [getattr(whole, name)[i] for i in rows] == getattr(part, name), name
    for layer, values in whole.layer_distance.items():
        torch.testing.assert_close(
            values[rows], part.layer_distance[layer], rtol=0, atol=0, equal_nan=True
        )
    assert torch.equal(whole.targets, part.targets)


@pytest.mark.parametrize(
    ("loss", "targets", "objectives"),
    [
        ("regularizer-free", [2, 3], [0, 1]),  # whole batches of the call
        ("transforms", [4, 5], [1]),  # the transform streams keep the objective's index
        ("adversarial", [1, 2, 3], [0]),  # straddles batches; auto weight over all targets
    ],
)
def test_a_part_is_bitwise_the_same_rows_of_the_whole_call(vgg, digits3, loss, targets, objectives):
    images, labels = digits3
    config = InversionConfig(
        steps=6, optimizer="adam", loss=loss, batch_size=4, adversarial_lambda="auto"
    )
    kwargs = {
        "layers": LAYERS,
        "seeds": "super-noise,image",
        "config": config,
        "labels": labels,
        "perceptual": _mse,
    }
    whole = invert(vgg, images, **kwargs)
    part = invert(vgg, images, only_targets=targets, only_objectives=objectives, **kwargs)
    rows = _rows(whole, targets, objectives)
    assert len(part) == len(rows) == 2 * len(targets) * len(objectives)
    _assert_same_rows(whole, part, rows)
    if loss == "adversarial":
        lam = whole.extra["adversarial_lambda"]
        assert part.extra["adversarial_lambda"] == {"penultimate": lam["penultimate"]}


def test_parts_report_progress_over_their_own_batches(vgg, digits3):
    images, _ = digits3
    seen = []
    invert(
        vgg,
        images,
        seeds="uniform",
        config=InversionConfig(steps=2, batch_size=2),
        only_targets=[0, 1, 2],
        progress=seen.append,
    )
    assert {p.batches for p in seen} == {2}
    assert seen[-1].steps_done == seen[-1].steps_total == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"only_targets": [8]}, "only_targets must hold indices in [0, 7]; got 8"),
        ({"only_targets": [True]}, "got True"),
        ({"only_objectives": [1]}, "only_objectives must hold indices in [0, 0]; got 1"),
        ({"only_targets": []}, "only_targets is empty"),
    ],
)
def test_bad_parts_are_refused(vgg, digits3, kwargs, message):
    images, _ = digits3
    with pytest.raises(InputShapeError) as info:
        invert(vgg, images, seeds="uniform", config=InversionConfig(steps=1), **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
