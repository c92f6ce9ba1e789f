import pytest
import torch
from PIL import Image

from percalign.data import load_images, read_image, resize, to_channels
from percalign.errors import ConfigError, ImageReadError, InputShapeError, UnknownNameError


def test_digits_are_real_upsampled_and_split_reproducibly():
    all_ = load_images("digits", size=32)
    assert all_.images.shape == (1797, 1, 32, 32) and all_.labels is not None
    assert all_.images.min() >= 0 and all_.images.max() <= 1
    train, test = load_images("digits", split="train"), load_images("digits", split="test")
    assert len(train) + len(test) == 1797 and not set(train.ids) & set(test.ids)
    assert load_images("digits", split="test").ids == test.ids
    # stratified: every class is in the test split in about a quarter of its members
    assert torch.bincount(test.labels).min() >= 40


def test_choice_of_n_is_seeded_and_sorted():
    a = load_images("digits", 5, seed=3)
    b = load_images("digits", 5, seed=3)
    assert a.ids == b.ids and list(a.ids) == sorted(a.ids)
    assert load_images("digits", 5, seed=4).ids != a.ids


def test_sample_photographs():
    s = load_images("samples", size=(48, 64))
    assert s.images.shape[1:] == (3, 48, 64) and len(s) >= 10 and s.labels is None
    with pytest.raises(ConfigError, match="no train/test split"):
        load_images("samples", split="test")


def test_folder_glob_and_class_subfolders(tmp_path):
    for cls, color in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (40, 30), color).save(tmp_path / cls / f"{i}.png")
    folder = load_images(str(tmp_path), size=16)
    assert folder.images.shape == (4, 3, 16, 16) and folder.labels.tolist() == [0, 0, 1, 1]
    glob = load_images(str(tmp_path / "dogs" / "*.png"), size=16)
    assert len(glob) == 2 and glob.images[:, 2].min() > 0.999 and glob.labels is None


def test_unreadable_and_missing_images(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match=r"broken\.png"):
        load_images(str(tmp_path))
    with pytest.raises(ImageReadError, match="No image files found"):
        load_images(str(tmp_path / "*.jpg"))
    with pytest.raises(UnknownNameError, match="Did you mean 'digits'"):
        load_images("digit")
    with pytest.raises(ConfigError, match="'n' parameter"):
        load_images("digits", 5000)


def test_grayscale_png_stays_one_channel(tmp_path):
    Image.new("L", (8, 8), 128).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (1, 8, 8)


def test_channel_conversion_and_resize():
    gray = torch.rand(2, 1, 10, 10)
    assert to_channels(gray, 3).shape == (2, 3, 10, 10)
    with pytest.raises(InputShapeError, match="only grayscale -> RGB"):
        to_channels(torch.rand(1, 3, 4, 4), 1)
    wide = torch.rand(1, 3, 20, 40)
    assert resize(wide, (10, 10)).shape == (1, 3, 10, 10)
