import pytest
import torch

from percalign.inversion.penalties import PENALTIES, blur, l1, l6, lp_norm, total_variation


@pytest.mark.parametrize("name", sorted(set(PENALTIES) - {"blur"}))
def test_gradcheck_in_float64(name):
    x = (torch.rand(2, 3, 6, 7, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    if name == "l1":  # |x - 0.5| has a kink at 0.5: stay away from it
        x = (torch.rand(2, 3, 6, 7, dtype=torch.float64) * 0.3 + 0.6).requires_grad_()
    assert torch.autograd.gradcheck(PENALTIES[name], (x,))


def test_blur_gradient_is_the_difference_to_the_held_blur():
    # the blurred copy is a constant by design, so finite differences (which move it too)
    # do not apply; its gradient is exactly x - blur(x)
    x = torch.rand(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(blur(x).sum(), x)
    padded = torch.nn.functional.pad(x.detach(), (1, 1, 1, 1), mode="replicate")
    blurred = torch.nn.functional.avg_pool2d(padded, 3, stride=1)
    torch.testing.assert_close(g, x.detach() - blurred)


def test_total_variation_beta3_gradcheck():
    x = torch.rand(1, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: total_variation(t, beta=3.0), (x,))


def test_values_on_hand_made_images():
    flat = torch.full((1, 3, 8, 8), 0.5)
    for fn in (total_variation, blur, l1):
        assert fn(flat).item() == 0.0
    assert l6(flat).item() == pytest.approx(1e-2, rel=1e-3)  # (1e-12) ** (1/6)
    # a vertical edge: one horizontal difference of 1 per row over the 7 compared rows
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1.0
    assert total_variation(edge).item() == pytest.approx(7.0)
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
