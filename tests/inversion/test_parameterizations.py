import pytest
import torch

import percalign as pa
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


def test_fourier_noise_seeds_start_in_the_spectrum_as_the_authors_do(digits3):
    """The authors draw Fourier noise seeds in the spectrum: a mid-grey, unsaturated start."""
    from percalign.inversion import InversionConfig, invert

    model = pa.models.load("tiny-cnn")
    targets = digits3[0][:3]
    starts = {
        start: invert(
            model,
            targets,
            seeds="super-noise,light-noise",
            config=InversionConfig(loss="fourier", steps=1, fourier_start=start),
        ).seeds
        for start in ("spectrum", "image")
    }
    spectrum, image = starts["spectrum"], starts["image"]
    assert float(((spectrum == 0) | (spectrum == 1)).float().mean()) < 0.01
    assert abs(float(spectrum.mean()) - 0.5) < 0.1
    assert float(((image == 0) | (image == 1)).float().mean()) > 0.4  # the clamped pixel noise
    light = spectrum[1::2]  # 0.01 x N(0, 1) in the spectrum: nearly flat grey
    assert float(light.std()) < 0.02
    with pytest.raises(pa.errors.ConfigError, match="fourier_start"):
        InversionConfig(fourier_start="pixels")


def test_the_authors_spectrum_clamp_is_an_option():
    from percalign.inversion.parameterizations import make_param

    start = torch.rand(2, 3, 8, 8) * 0.8 + 0.1
    plain, clamped = make_param("fourier", start), make_param("fourier", start, True)
    for param in (plain, clamped):
        with torch.no_grad():
            param.params.sub_(2.0)
        param.project()
    assert plain.params.min() < 0  # left as it is
    assert clamped.params.min() >= 0 and clamped.params.max() <= 1
