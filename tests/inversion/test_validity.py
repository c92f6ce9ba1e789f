import numpy as np
import pytest
import torch

import percalign as pa
from percalign.errors import ConfigError
from percalign.inversion import null_distribution


def test_null_uses_distinct_pairs_and_its_percentile():
    model = pa.models.load("tiny-cnn")
    images = pa.data.to_channels(pa.data.load_images("digits", 30, size=32).images, 3)
    null = null_distribution(model, images, "penultimate", percentile=5.0)
    assert null.distances.size == 30 * 29 and (null.distances > 0).all()
    assert null.threshold == pytest.approx(np.percentile(null.distances, 5.0))
    assert null.valid(torch.tensor([0.0, 1e9]), objective="penultimate").tolist() == [True, False]
    sampled = null_distribution(model, images, "penultimate", max_pairs=100)
    assert sampled.distances.size == 100 and (sampled.distances > 0).all()


def test_null_of_a_weighted_objective_is_the_weighted_sum():
    model = pa.models.load("tiny-cnn")
    images = torch.rand(5, 3, 32, 32)
    a = null_distribution(model, images, "block2").distances
    b = null_distribution(model, images, "penultimate").distances
    both = null_distribution(model, images, "0.5*block2+penultimate").distances
    np.testing.assert_allclose(both, 0.5 * a + b, rtol=1e-5)


def test_null_needs_two_images_and_a_sane_percentile():
    model = pa.models.load("tiny-cnn")
    with pytest.raises(ConfigError, match="at least 2"):
        null_distribution(model, torch.rand(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="'percentile' parameter"):
        null_distribution(model, torch.rand(4, 3, 32, 32), percentile=0)


def test_the_null_has_no_fake_relu_setting_because_fake_relu_changes_no_distance():
    model = pa.models.load("tiny-cnn")
    images = torch.rand(4, 3, 32, 32)
    plain = model.extractor(["penultimate"])(images)["penultimate"]
    fake = model.extractor(["penultimate"], fake_relu=True)(images)["penultimate"]
    torch.testing.assert_close(fake, plain, rtol=0, atol=0)  # the same forward values
    with pytest.raises(TypeError, match="fake_relu"):
        null_distribution(model, images, fake_relu=True)  # not accepted, then ignored


def test_a_null_judges_only_its_own_objectives_iris():
    model = pa.models.load("tiny-cnn")
    images = pa.data.to_channels(pa.data.load_images("digits", 12, size=32).images, 3)
    result = pa.invert(
        model,
        images[:2],
        layers=["block2", "penultimate"],
        seeds="light-noise",
        config=pa.InversionConfig(steps=3),
    )
    nulls = [null_distribution(model, images, name) for name in ("block2", "penultimate")]
    late = nulls[1]
    with pytest.raises(ConfigError, match="null of 'penultimate' cannot judge IRIs of 'block2'"):
        late.valid(result)
    with pytest.raises(ConfigError, match="needs objective="):
        late.valid(result.distance)
    with pytest.raises(ConfigError, match="cannot judge IRIs of 'block2'"):
        late.valid(result.distance, objective="block2")
    flags = pa.validity(result, nulls)
    own = np.array([nulls[0 if o == "block2" else 1].threshold for o in result.objective])
    assert flags.tolist() == (result.distance.numpy() < own).tolist()
    assert pa.validity(result, {n.objective: n for n in nulls}).tolist() == flags.tolist()
    with pytest.raises(ConfigError, match="No validity null for objective 'block2'"):
        pa.validity(result, [late])
    with pytest.raises(ConfigError, match="filed under 'block2' is 'penultimate'"):
        pa.validity(result, {"block2": late, "penultimate": late})
