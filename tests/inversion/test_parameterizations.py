import pytest
import torch

from percalign.inversion.parameterizations import FourierImage, PixelImage


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 17, 24), (2, 1, 16, 16)])
def test_fourier_image_starts_exactly_at_the_seed(shape):
    start = torch.rand(shape)
    param = FourierImage(start)
    torch.testing.assert_close(param.image(), start.clamp(1e-3, 1 - 1e-3), atol=1e-5, rtol=0)


def test_fourier_image_is_in_range_and_differentiable():
    param = FourierImage(torch.rand(1, 3, 16, 16))
    with torch.no_grad():
        param.params.mul_(50.0)
    img = param.image()
    assert img.min() >= 0 and img.max() <= 1
    (g,) = torch.autograd.grad(img.sum(), param.params)
    assert torch.isfinite(g).all()


def test_pixel_image_projects_to_the_unit_range():
    param = PixelImage(torch.rand(1, 3, 4, 4))
    with torch.no_grad():
        param.params.add_(2.0)
    param.project()
    assert param.image().max() == 1.0
