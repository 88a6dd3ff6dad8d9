"""Preprocessing against hand-computed values (Zhang et al. Appendix A and plain scaling)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench.data.preprocess import channel_stats, per_image_standardization, standardize, unit, zhang
from genbench.errors import ConfigError


def test_unit_scales_to_float32():
    out = unit(torch.tensor([0, 51, 255], dtype=torch.uint8).reshape(1, 1, 1, 3))
    assert out.dtype == torch.float32
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 0.2, 1.0]))


def test_per_image_standardization_hand_values():
    # [0, 1, 1, 0]: mean 0.5, population std 0.5 (> floor 1/sqrt(4)) -> [-1, 1, 1, -1]
    x = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    assert torch.allclose(per_image_standardization(x), torch.tensor([[[[-1.0, 1.0], [1.0, -1.0]]]]))


def test_std_floor_counts_channels():
    # two channels of one pixel, [0, 1]: std 0.5 < floor 1/sqrt(2), so divide by 1/sqrt(2)
    out = per_image_standardization(torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1))
    assert torch.allclose(out.flatten(), torch.tensor([-math.sqrt(0.5), math.sqrt(0.5)]))


def test_std_floor_for_near_constant_image():
    # [0, 0, 0, 1/255]: mean 1/1020, std 0.0017 < floor 0.5 -> (x - mean) / 0.5
    x = torch.tensor([0, 0, 0, 1], dtype=torch.uint8).reshape(1, 1, 2, 2)
    expected = torch.tensor([-1 / 510, -1 / 510, -1 / 510, 1 / 170])
    assert torch.allclose(per_image_standardization(unit(x)).flatten(), expected)


def test_zhang_crops_the_center_28():
    x = torch.full((1, 1, 32, 32), 255, dtype=torch.uint8)  # border outside the crop: 255
    x[0, 0, 2:30, 2:16] = 0   # left half of the central 28x28: 0
    x[0, 0, 2:30, 16:30] = 51  # right half: 0.2 -> mean 0.1, std 0.1
    out = zhang(x)
    assert out.shape == (1, 1, 28, 28)
    assert torch.allclose(out[0, 0, :, :14], torch.tensor(-1.0))
    assert torch.allclose(out[0, 0, :, 14:], torch.tensor(1.0))


def test_zhang_constant_image_is_zero_not_nan():
    out = zhang(torch.full((2, 3, 32, 32), 7, dtype=torch.uint8))
    assert torch.equal(out, torch.zeros(2, 3, 28, 28))


def test_zhang_matches_tensorflow_formula():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    crop = x[:, :, 2:30, 2:30].astype(np.float64) / 255
    mean = crop.mean(axis=(1, 2, 3), keepdims=True)
    adjusted = np.maximum(crop.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(3 * 28 * 28))
    expected = torch.from_numpy((crop - mean) / adjusted).float()
    assert torch.allclose(zhang(torch.from_numpy(x)), expected, atol=1e-5)


def test_zhang_rejects_images_smaller_than_the_crop():
    with pytest.raises(ConfigError, match="28x28"):
        zhang(torch.zeros(1, 1, 16, 16, dtype=torch.uint8))


def test_standardize_per_channel():
    x = torch.tensor([0.5, 0.5]).reshape(1, 2, 1, 1)
    out = standardize(x, mean=[0.25, 0.5], std=[0.5, 2.0])
    assert torch.allclose(out.flatten(), torch.tensor([0.5, 0.0]))


@pytest.mark.parametrize("x, mean, std", [
    (torch.zeros(1, 2, 1, 1, dtype=torch.uint8), [0, 0], [1, 1]),
    (torch.zeros(1, 2, 1, 1), [0, 0, 0], [1, 1, 1]),
    (torch.zeros(1, 2, 1, 1), [0, 0], [1, 0]),
])
def test_standardize_rejects_bad_input(x, mean, std):
    with pytest.raises(ConfigError):
        standardize(x, mean, std)


def test_channel_stats_hand_values():
    x = torch.tensor([[0, 10], [2, 10]], dtype=torch.uint8).reshape(2, 2, 1, 1)
    mean, std = channel_stats(x)
    assert mean.tolist() == [1.0, 10.0] and std.tolist() == [1.0, 0.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_preprocessing_stays_on_the_device():
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, device="cuda")
    assert zhang(x).is_cuda and standardize(unit(x), [0.5] * 3, [0.2] * 3).is_cuda
    assert torch.allclose(zhang(x).cpu(), zhang(x.cpu()), atol=1e-5)
