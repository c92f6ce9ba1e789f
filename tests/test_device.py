"""The one device resolver behind every --device and [study] device."""

import pytest
import torch

from percalign import _device
from percalign._device import resolve_device
from percalign.errors import ConfigError, UnknownNameError


@pytest.fixture
def two_gpus(monkeypatch):
    """This machine as if it had two CUDA GPUs (resolution only; nothing runs on them)."""
    monkeypatch.setattr(_device, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(_device, "cuda_available", lambda: False)


def test_auto_takes_cuda_when_present(two_gpus):
    assert resolve_device("auto") == "cuda" and resolve_device(None) == "cuda"
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device(" CPU ") == "cpu"


def test_auto_is_the_cpu_without_cuda(no_gpu):
    assert resolve_device("auto") == "cpu"


def test_cuda_without_cuda_names_the_fix(no_gpu):
    with pytest.raises(ConfigError, match=r"--device cuda was asked for, but CUDA is not avail"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match=r"\[study\] device cuda:0 .* use \[study\] device cpu"):
        resolve_device("cuda:0", "[study] device")


def test_gpu_index_beyond_the_visible_ones(two_gpus):
    with pytest.raises(ConfigError, match=r"only 2 CUDA device\(s\) are visible \(cuda:0..cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("bad", ["cdua", "gpu", "cuda:x", "cpu:1"])
def test_unknown_device_names_close_matches(bad):
    with pytest.raises(UnknownNameError, match=f"Unknown device '{bad}'"):
        resolve_device(bad)


def test_describe():
    assert _device.describe("cpu") == "cpu"
