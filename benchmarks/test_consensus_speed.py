"""Speed of Algorithm 1 at scale (issue 8 acceptance: 100,000 samples x 10 models x 10 classes
in well under a second on a CPU). Validation of the probability tensor is included, since
every public call pays for it.

Run: ``pytest benchmarks/test_consensus_speed.py --benchmark-only``
"""

import pytest
import torch

from genbench.analysis import consensus, threshold_sweep

N_MODELS, N_SAMPLES, N_CLASSES = 10, 100_000, 10


@pytest.fixture(scope="module")
def probs() -> torch.Tensor:
    logits = torch.randn(N_MODELS, N_SAMPLES, N_CLASSES, generator=torch.Generator().manual_seed(0))
    return torch.softmax(3 * logits, dim=-1)


@pytest.mark.parametrize("k", [None, 5], ids=["algorithm1", "k5_of_10"])
def test_consensus_speed(benchmark, probs, k):
    benchmark.extra_info.update(n_models=N_MODELS, n_samples=N_SAMPLES, n_classes=N_CLASSES, k=k)
    pred = benchmark(consensus, probs, 0.5, k)
    assert pred.shape == (N_SAMPLES,)


def test_threshold_sweep_speed(benchmark, probs):
    y = torch.randint(0, N_CLASSES, (N_SAMPLES,), generator=torch.Generator().manual_seed(1))
    thresholds = torch.linspace(0, 0.99, 100)
    sweep = benchmark(threshold_sweep, probs, y, thresholds)
    assert sweep.coverage.shape == (100,)
