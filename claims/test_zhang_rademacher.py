"""Zhang et al. (2017), Section 2.2: the randomization test is an empirical Rademacher estimate.

K networks, each trained on its own uniform +-1 labeling sigma_k of the same n images (two
classes, ``fit_many`` through ``train_runs``), are scored on those images against sigma_k:
(1/K) sum_k (1/n) sum_i sigma_ki h_k(x_i). A class that fits every labeling gives 1, the
trivial upper bound. h is the network's classification sign(2p - 1); the soft 2p - 1 is
recorded too. Tolerance: >= 0.99, i.e. at most 0.5% of the n K labels misfit (a network that
fits misses none). Control: the same networks against fresh labelings must give ~0, within
3 / sqrt(K n) (three standard deviations of a mean of K n independent +-1 products).
"""

import math
from dataclasses import dataclass

import pytest

from genbench.experiment import DataSpec, Runs, prepare, seeds
from genbench.studies import theory as study
from genbench.training import TrainConfig


@dataclass(frozen=True)
class Settings:
    data: DataSpec
    k_draws: int
    config: TrainConfig
    model: str = "mlp_1x512"


# Smoke: 200 MNIST images and 4 labelings keep the fits at a few seconds each; the statement
# is about fitting every labeling of the sample, which is as meaningful for 200 points as for
# 50,000. Adam (lr 1e-3, batch 50) fits random labels in tens of epochs, where Zhang's SGD
# with a 0.95 per-epoch decay stalls (measured: 70% after 200 epochs on 1,000 images).
SETTINGS = {
    "smoke": Settings(DataSpec("mnist", n_train=200, n_test=10), 4,
                      TrainConfig.extreme(batch_size=50, stop="train_acc", stop_target=1.0,
                                          max_epochs=100, eval_every=5, keep_test_probs=True)),
    "full": Settings(DataSpec("cifar10", source="full", n_train=10_000, n_test=10, preprocess="zhang"),
                     16, TrainConfig.extreme(stop="train_acc", stop_target=1.0, max_epochs=300,
                                             eval_every=5, keep_test_probs=True)),
}


@pytest.mark.claim("Z.S2.rademacher", source="Zhang et al. 2017, Section 2.2, Eq. (1)",
                   statement="the empirical Rademacher complexity of a network that fits random "
                             "+-1 labels is about 1")
def test_rademacher(claim, scale, device):
    s = SETTINGS[scale]
    train, _ = prepare(s.data, device=device)
    runs = Runs(s.model, s.config, seeds(s.k_draws))
    r = study.rademacher_study(train, runs, s.k_draws, seed=0, device=device)
    claim.at_least("empirical Rademacher complexity (sign)", r.hard, 0.99, paper=1.0)
    claim.at_most("control: fresh labelings, |estimate|", abs(r.control),
                  3 / math.sqrt(r.k_draws * r.n))
    claim.note("empirical Rademacher complexity (2p - 1)", r.soft)
    claim.note("networks that fitted their labeling", f"{r.fitted} of {r.k_draws}")
    claim.note("training accuracy per labeling", list(r.train_acc))
    claim.sizes(train=f"{r.n:,} {s.data.dataset} images, {r.k_draws} labelings, {s.model}")
    claim.seeds(*runs.seeds)
    claim.conclude()
