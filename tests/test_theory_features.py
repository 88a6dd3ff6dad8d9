"""Gabor and random conv-net features: documented shapes, determinism per seed."""

import pytest
import torch

from genbench.errors import ConfigError
from genbench.theory import GaborBank, fit_random_conv, gabor_features, random_conv_features


def _images(n: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_gabor_shape_and_determinism():
    x = _images(6, 1, 28)
    f = gabor_features(x)
    assert f.shape == (6, 3 * 8 * 7 * 7)
    assert torch.equal(f, gabor_features(x)) and (f >= 0).all()
    assert gabor_features(x, GaborBank(wavelengths=(4.0,), orientations=4)).shape == (6, 4 * 49)


def test_gabor_rejects_colour():
    with pytest.raises(ConfigError, match="grayscale"):
        gabor_features(_images(2, 3, 28))


def test_random_conv_shape_determinism_and_chunking():
    x = _images(10, 3, 32)
    f = random_conv_features(x, 20, seed=5, num_patches=2000)
    assert f.shape == (10, 4 * 20) and (f >= 0).all()
    assert torch.equal(f, random_conv_features(x, 20, seed=5, num_patches=2000))
    assert not torch.equal(f, random_conv_features(x, 20, seed=6, num_patches=2000))
    chunked = fit_random_conv(x, 20, seed=5, num_patches=2000, chunk_images=3, chunk_filters=7)
    torch.testing.assert_close(chunked(x), f)


def test_random_conv_filter_slices_concatenate():
    x = _images(4, 3, 16)
    net = fit_random_conv(x, 12, seed=0, num_patches=1000)
    parts = [net.features(x, slice(s, s + 4)).view(4, 4, 4) for s in (0, 4, 8)]
    torch.testing.assert_close(torch.cat(parts, dim=1).flatten(1), net(x))


def test_random_conv_whitening_decorrelates_patches():
    x = _images(50, 3, 16)
    net = fit_random_conv(x, 1, seed=0, num_patches=5000, dtype=torch.float64)
    P, _, _ = net._whitened_patches(x.double())
    cov = torch.cov(P.reshape(-1, P.shape[-1]).T)
    off = cov - torch.diag(cov.diagonal())
    assert off.abs().max() < 0.1 * cov.diagonal().mean()
