"""Property tests of the corruptions: determinism, identities and the stated distributions.

Statistical checks use exact binomial / chi-square tests at a tiny significance level; hypothesis
runs derandomized so that a run is reproducible.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from genbench.data import ArrayDataset
from genbench.data.corruptions import (extreme_overfitting_set, gaussian_pixels, random_labels,
                                       random_pixels, shuffled_pixels, wrong_labels)
from genbench.errors import ConfigError

ALPHA = 1e-6
STAT = settings(max_examples=25, deadline=None, derandomize=True)
seeds = st.integers(0, 2**31 - 1)
classes = st.integers(2, 10)


def labelled(n: int, k: int, shape=(1, 1, 1)) -> ArrayDataset:
    gen = torch.Generator().manual_seed(n * 31 + k)
    x = torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
    return ArrayDataset(x, torch.arange(n) % k, k, "synthetic")


@STAT
@given(p=st.floats(0, 1), k=classes, seed=seeds)
def test_random_labels_same_seed_same_result(p, k, seed):
    ds = labelled(300, k)
    assert torch.equal(random_labels(ds, p, seed).y, random_labels(ds, p, seed).y)
    assert torch.equal(random_labels(ds, p, seed).x, ds.x)


@STAT
@given(k=classes, seed=seeds)
def test_random_labels_p0_is_identity(k, seed):
    ds = labelled(300, k)
    assert random_labels(ds, 0.0, seed).fingerprint() == ds.fingerprint()


@STAT
@given(p=st.floats(0.05, 1), k=classes, seed=seeds)
def test_random_labels_changed_fraction(p, k, seed):
    ds = labelled(3000, k)
    changed = int((random_labels(ds, p, seed).y != ds.y).sum())
    assert stats.binomtest(changed, len(ds), p * (k - 1) / k).pvalue > ALPHA


@STAT
@given(k=classes, seed=seeds)
def test_random_labels_p1_independent_of_truth(k, seed):
    ds = labelled(4000, k)
    new = random_labels(ds, 1.0, seed).y
    agree = int((new == ds.y).sum())
    assert stats.binomtest(agree, len(ds), 1 / k).pvalue > ALPHA
    table = torch.zeros(k, k, dtype=torch.int64)
    table.index_put_((ds.y, new), torch.ones_like(new), accumulate=True)
    assert stats.chi2_contingency(table.numpy()).pvalue > ALPHA


def test_random_labels_rejects_bad_p():
    with pytest.raises(ConfigError, match="p"):
        random_labels(labelled(10, 2), 1.5, 0)


@STAT
@given(k=classes, seed=seeds)
def test_wrong_labels_never_true_and_uniform_over_the_rest(k, seed):
    ds = labelled(3000, k)
    offset = (wrong_labels(ds, seed).y - ds.y) % k
    assert bool((offset != 0).all())
    counts = torch.bincount(offset, minlength=k)[1:]
    if k > 2:
        assert stats.chisquare(counts.numpy()).pvalue > ALPHA


@STAT
@given(n_train=st.integers(1, 60), n_test=st.integers(1, 25), k=classes, seed=seeds)
def test_extreme_overfitting_set_follows_algorithm_1(n_train, n_test, k, seed):
    train, test = labelled(n_train, k, (1, 2, 2)), labelled(n_test, k, (1, 2, 2))
    out = extreme_overfitting_set(train, test, seed)
    repeats = n_train // n_test + 1
    assert len(out) == n_train + repeats * n_test
    assert torch.equal(out.x[:n_train], train.x) and torch.equal(out.y[:n_train], train.y)
    copies_x = out.x[n_train:].reshape(repeats, n_test, 1, 2, 2)
    copies_y = out.y[n_train:].reshape(repeats, n_test)
    assert bool((copies_x == test.x).all()) and bool((copies_y == copies_y[0]).all())
    assert bool((copies_y[0] != test.y).all())
    assert out.fingerprint() == extreme_overfitting_set(train, test, seed).fingerprint()


def test_extreme_overfitting_set_rejects_mismatched_sets():
    with pytest.raises(ConfigError):
        extreme_overfitting_set(labelled(10, 3), labelled(5, 4), 0)


def _sorted_pixels(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).sort(dim=2).values


@STAT
@given(seed=seeds, channels=st.sampled_from([1, 3]))
def test_shuffled_pixels_one_permutation_shared_by_train_and_test(seed, channels):
    train, test = labelled(40, 3, (channels, 5, 5)), labelled(7, 3, (channels, 5, 5))
    a, b = shuffled_pixels(train, seed), shuffled_pixels(test, seed)
    assert torch.equal(_sorted_pixels(a.x), _sorted_pixels(train.x))
    # recover the permutation from a position-coded image: it is the same for all images and sets
    coded = torch.arange(25, dtype=torch.uint8).reshape(1, 1, 5, 5).expand(2, channels, 5, 5)
    perm = shuffled_pixels(ArrayDataset(coded.contiguous(), torch.zeros(2, dtype=torch.int64), 1,
                                        "coded"), seed).x.flatten(2)[0, 0].long()
    assert torch.equal(a.x.flatten(2), train.x.flatten(2)[:, :, perm])
    assert torch.equal(b.x.flatten(2), test.x.flatten(2)[:, :, perm])
    assert torch.equal(a.y, train.y)


@STAT
@given(seed=seeds)
def test_random_pixels_keep_each_image_multiset_and_differ_per_image(seed):
    coded = torch.arange(36, dtype=torch.uint8).reshape(1, 1, 6, 6).repeat(50, 3, 1, 1)
    ds = ArrayDataset(coded, torch.zeros(50, dtype=torch.int64), 1, "coded")
    out = random_pixels(ds, seed)
    assert torch.equal(_sorted_pixels(out.x), _sorted_pixels(ds.x))
    assert bool((out.x[:, 0] == out.x[:, 2]).all())  # channels move together
    assert len({tuple(img.flatten().tolist()) for img in out.x[:, 0]}) > 45
    assert torch.equal(out.x, random_pixels(ds, seed).x)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=seeds)
def test_gaussian_pixels_match_moments(seed):
    ds = labelled(200, 10, (3, 8, 8))
    out = gaussian_pixels(ds, seed)
    reference = ds.x.double()
    mean, var = reference.mean(), reference.var(correction=0)
    m = out.x.numel()
    assert out.x.dtype == torch.float32 and out.x.shape == ds.x.shape
    assert abs(out.x.double().mean() - mean) < 6 * var.sqrt() / m ** 0.5
    assert abs(out.x.double().var() / var - 1) < 6 * (2 / m) ** 0.5
    assert torch.equal(out.x, gaussian_pixels(ds, seed).x)
