import pytest
import torch

from percalign.inversion.transforms import ANGLES, SCALES, random_affine, sample_transform_draws


def _u(shift1=(0, 0), scale_index=5, angle=0.0, shift2=(0, 0)):
    """Uniforms that select exactly the given transform."""
    angle_index = ANGLES.tolist().index(angle)
    return torch.tensor(
        [
            [
                (shift1[0] + 4 + 0.5) / 9,
                (shift1[1] + 4 + 0.5) / 9,
                (scale_index + 0.5) / len(SCALES),
                (angle_index + 0.5) / len(ANGLES),
                (shift2[0] + 2 + 0.5) / 5,
                (shift2[1] + 2 + 0.5) / 5,
            ]
        ]
    )


def test_identity_leaves_the_image():
    x = torch.rand(1, 3, 16, 20)
    torch.testing.assert_close(random_affine(x, _u()), x, atol=1e-5, rtol=0)


def test_shift_moves_content_and_fills_grey():
    x = torch.rand(1, 1, 16, 16)
    out = random_affine(x, _u(shift1=(2, 0), shift2=(1, 0)))
    torch.testing.assert_close(out[..., 3:], x[..., :-3], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[..., :3], torch.full_like(out[..., :3], 0.5), atol=1e-5, rtol=0)


def test_scale_enlarges_content():
    x = torch.zeros(1, 1, 40, 40)
    x[..., 10:30, 10:30] = 1.0
    bigger = random_affine(x, _u(scale_index=10))  # 1.10
    smaller = random_affine(x, _u(scale_index=0))  # 0.90
    assert (bigger > 0.5).sum() > (x > 0.5).sum() > (smaller > 0.5).sum()


def test_ranges_match_the_recipe():
    assert SCALES.tolist() == pytest.approx([0.90 + 0.02 * i for i in range(11)])
    assert ANGLES.min() == -10 and ANGLES.max() == 10 and (ANGLES == 0).sum() == 6


def test_draws_are_reproducible_from_their_stream():
    a = sample_transform_draws(torch.Generator().manual_seed(3), 5)
    b = sample_transform_draws(torch.Generator().manual_seed(3), 5)
    assert torch.equal(a, b) and a.shape == (5, 6)
