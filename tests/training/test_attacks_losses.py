import math

import pytest
import torch
import torch.nn.functional as F

from percalign.errors import ConfigError
from percalign.training.attacks import pgd
from percalign.training.losses import nt_xent, trades_kl


@pytest.fixture
def linear():
    torch.manual_seed(0)
    w = torch.randn(10, 3 * 8 * 8)
    return lambda x: x.flatten(1) @ w.t()


@pytest.mark.parametrize(("norm", "eps"), [("l2", 1.0), ("linf", 8 / 255)])
def test_pgd_stays_in_the_ball_and_raises_the_loss(linear, norm, eps):
    x = torch.rand(16, 3, 8, 8)
    y = torch.randint(0, 10, (16,))

    def loss(z):
        return F.cross_entropy(linear(z), y, reduction="none")

    adv = pgd(loss, x, eps=eps, norm=norm, steps=10, generator=torch.Generator().manual_seed(0))
    delta = (adv - x).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().max(dim=1).values
    assert (size <= eps + 1e-5).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert (loss(adv) > loss(x)).float().mean() > 0.9


def test_pgd_with_zero_eps_is_the_identity(linear):
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(pgd(lambda z: linear(z).sum(1), x, eps=0.0), x)
    with pytest.raises(ConfigError, match="'norm' parameter"):
        pgd(lambda z: linear(z).sum(1), x, eps=1.0, norm="l3")


def test_trades_kl_equals_a_hand_computed_value():
    clean = torch.tensor([[2.0, 0.0]])
    adv = torch.tensor([[0.0, 0.0]])
    p = [math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]
    expected = p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5)
    assert trades_kl(clean, adv).item() == pytest.approx(expected, rel=1e-6)
    assert trades_kl(clean, clean).item() == pytest.approx(0.0, abs=1e-7)


def test_nt_xent_equals_a_hand_computed_value():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # view 0: positive (view 2) has cos 1; negatives: view 1 (cos 0), view 3 (cos 0)
    per_view = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * math.exp(0)))
    assert nt_xent(z1, z2, t).item() == pytest.approx(per_view, rel=1e-6)
    # a worse pairing costs more
    assert nt_xent(z1, z2.flip(0), t) > nt_xent(z1, z2, t)
