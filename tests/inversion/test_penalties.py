import pytest
import torch

from percalign.inversion.penalties import PENALTIES, blur, l1, l6, lp_norm, total_variation


@pytest.mark.parametrize("name", sorted(set(PENALTIES) - {"blur"}))
def test_gradcheck_in_float64(name):
    x = (torch.rand(2, 3, 6, 7, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    if name == "l1":  # |x - 0.5| has a kink at 0.5: stay away from it
        x = (torch.rand(2, 3, 6, 7, dtype=torch.float64) * 0.3 + 0.6).requires_grad_()
    assert torch.autograd.gradcheck(PENALTIES[name], (x,))


def _weighted_neighbour_mean(x: torch.Tensor) -> torch.Tensor:
    """The authors' blur written out: centre weight 1, the 8 neighbours 0.5, inside only."""
    out = torch.empty_like(x)
    h, w = x.shape[-2:]
    for i in range(h):
        for j in range(w):
            total = weight = 0.0
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    if 0 <= i + di < h and 0 <= j + dj < w:
                        k = 1.0 if di == dj == 0 else 0.5
                        total = total + k * x[..., i + di, j + dj]
                        weight += k
            out[..., i, j] = total / weight
    return out


def test_blur_gradient_is_the_difference_to_the_authors_held_blur():
    # the blurred copy is a constant by design, so finite differences (which move it too)
    # do not apply; its gradient is exactly x - blur(x)
    x = torch.rand(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(blur(x).sum(), x)
    torch.testing.assert_close(g, x.detach() - _weighted_neighbour_mean(x.detach()))


def test_total_variation_is_the_authors_sum_of_squared_differences():
    x = torch.rand(2, 3, 6, 7, dtype=torch.float64)
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).sum(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1).sum(1)
    torch.testing.assert_close(total_variation(x), dy + dx)


def test_total_variation_beta3_gradcheck():
    x = torch.rand(1, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: total_variation(t, beta=3.0), (x,))


def test_values_on_hand_made_images():
    flat = torch.full((1, 3, 8, 8), 0.5)
    for fn in (total_variation, blur, l1):
        assert fn(flat).item() == 0.0
    assert l6(flat).item() == pytest.approx(1e-2, rel=1e-3)  # (1e-12) ** (1/6)
    # a vertical edge: one horizontal difference of 1 in each of the 8 rows
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1.0
    assert total_variation(edge).item() == pytest.approx(8.0)
    assert l1(edge).item() == pytest.approx(64 * 0.5)
    assert lp_norm(edge, 6.0).item() == pytest.approx((64 * 0.5**6) ** (1 / 6), rel=1e-5)


def test_l6_is_differentiable_at_a_uniform_grey_image():
    x = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)
    (g,) = torch.autograd.grad(l6(x).sum(), x)
    assert torch.isfinite(g).all()


def test_penalties_are_per_image():
    x = torch.rand(3, 3, 8, 8)
    for fn in PENALTIES.values():
        together = fn(x)
        alone = torch.cat([fn(x[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone)
