"""genbench.studies.consensus: the compositions behind the consensus paper's claims, on tiny
real-data subsets, and the claim file's full-scale settings (so a typo cannot wait for a GPU)."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from genbench import models
from genbench.analysis import ThresholdSweep
from genbench.errors import ConfigError
from genbench.experiment import DataSpec, Runs, prepare, train_runs
from genbench.stats import binomial_floor
from genbench.studies import consensus as cs
from genbench.training import TrainConfig

TINY = cs.Setting(mnist=DataSpec("mnist", n_train=100, n_test=200),
                  usps=DataSpec("usps", n_train=200, n_test=200), mnist_epochs=2, usps_epochs=3)


def _claim_settings() -> dict[str, cs.Setting]:
    path = Path(__file__).resolve().parents[1] / "claims" / "test_consensus.py"
    spec = importlib.util.spec_from_file_location("consensus_claim_settings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SETTINGS


def test_claim_settings_are_the_papers_at_full_scale():
    settings = _claim_settings()
    full = settings["full"]
    assert (full.mnist.source, full.mnist.n_train, full.mnist.n_test) == ("full", 1000, None)
    assert (full.usps.source, full.usps.n_train, full.usps.n_test) == ("full", None, None)
    for s in settings.values():
        for epochs in (s.mnist_epochs, s.usps_epochs):
            for per_epoch in (False, True):
                config = s.config(epochs, per_epoch=per_epoch)
                assert TrainConfig.from_dict(config.to_dict()) == config
                assert config.optimizer == "adam" and config.lr_decay == 1.0
                assert config.compile == "off" and config.keep_weights and config.keep_test_probs
        for arch in cs.ARCHITECTURES:
            for shape in ((1, 28, 28), (1, 16, 16)):
                for p in cs.DROPOUTS:
                    models.build(arch, shape, 10, seed=0, dropout1=p, dropout2=p)


def test_a_run_to_epoch_e_is_the_start_of_a_longer_run():
    """What the logit norm at the best epoch relies on (constant lr, no compile)."""
    train, test = prepare(TINY.usps)
    short, long = (train_runs(Runs("c_cnn", TINY.config(e, per_epoch=True)), train, test)[0]
                   for e in (2, 3))
    assert short.curves["test_loss"] == long.curves["test_loss"][:2]
    assert torch.equal(short.test_history, long.test_history[:2])


def test_loss_dynamics_on_a_tiny_usps_subset():
    d = cs.loss_dynamics(TINY)
    assert d.epochs == [1, 2, 3] and 1 <= d.best_epoch <= 3
    assert len(d.loss_correct) == len(d.loss_wrong) == len(d.overlap) == len(d.losses) == 3
    for (right, wrong), n_wrong in zip(d.losses, d.n_wrong):
        assert right.numel() + wrong.numel() == 200 and wrong.numel() == n_wrong
    assert d.logit_norm_best > 0 and d.logit_norm_last == d.logit_norms[-1]
    assert len(d.logit_norms) == 3
    assert d.loss_rise == pytest.approx(d.test_loss[-1] / d.test_loss[d.best_epoch - 1] - 1)


def test_loss_dynamics_on_mnist_and_seeds():
    a = cs.loss_dynamics(TINY, seed=0, dataset="mnist")
    b = cs.loss_dynamics(TINY, seed=1, dataset="mnist")
    assert a.epochs == [1, 2] and sum(r.numel() + w.numel() for r, w in a.losses[:1]) == 200
    assert a.test_loss != b.test_loss  # another seed is another run
    rises = cs.loss_rises(TINY, (0, 1), dataset="mnist")
    assert len(rises) == 2 and all(r >= 0 for r in rises)
    with pytest.raises(ConfigError, match="mnist"):
        cs.loss_dynamics(TINY, dataset="cifar10")


def test_members_share_the_section_ii_run_and_interpolation_ends_at_the_solutions():
    runs, test = cs.members(TINY)
    assert list(runs) == list(cs.ARCHITECTURES)
    (seed0, seed1), _ = cs.solutions(TINY)
    assert runs["c_cnn"] is seed0 and seed1.seed == 1
    assert cs.stacked_probs(runs).shape == (3, 200, 10)
    path = cs.interpolation(TINY, [0.0, 1.0])
    assert path.accuracy.tolist() == pytest.approx(
        [seed1.final["test_acc"], seed0.final["test_acc"]], abs=1e-6)
    curves = cs.sweeps(runs, test.y, [0.1, 0.5, 0.9])
    assert set(curves) == {*cs.ARCHITECTURES, "consensus"}
    for arch in cs.ARCHITECTURES:  # the class-wise minimum never classifies more than a member
        assert (curves["consensus"].coverage <= curves[arch].coverage).all()
    assert set(cs.dropout_sweeps(TINY, [0.5])) == set(cs.DROPOUTS)


def test_reach_reads_the_papers_range_from_either_solution():
    assert cs.reach((-1.0, 0.4)) == pytest.approx((1.0, 0.4))
    assert cs.reach((0.6, 2.0)) == pytest.approx((1.0, 0.4))
    assert cs.reach((-0.5, 1.2)) == pytest.approx((0.5, 1.0))


def test_phase_slope_is_nan_without_two_epochs():
    assert cs.phase_slope([3.0, 2.0, 2.0, 3.0, 4.0], 3) == pytest.approx(1.0)
    assert math.isnan(cs.phase_slope([1.0, 2.0], 2))


def test_best_at_coverage_and_accuracy_floor():
    sweep = ThresholdSweep(thresholds=torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64),
                           accuracy=torch.tensor([0.90, 0.95, 0.99], dtype=torch.float64),
                           coverage=torch.tensor([1.0, 0.92, 0.5], dtype=torch.float64))
    assert cs.best_at_coverage(sweep, 0.9) == pytest.approx((0.5, 0.95, 0.92))
    assert all(math.isnan(v) for v in cs.best_at_coverage(sweep, 1.1))
    small, large = binomial_floor(0.95, 200), binomial_floor(0.95, 9000)
    assert small < large < 0.95 and large > 0.94


def test_largest_gap_ignores_thresholds_where_nothing_is_classified():
    nan = float("nan")
    curves = [torch.tensor([0.9, 0.95, nan]), torch.tensor([0.92, 0.99, nan])]
    assert cs.largest_gap(curves) == pytest.approx(0.04)


def test_algorithm1_matches_the_papers_definitions_on_random_probabilities():
    g = torch.Generator().manual_seed(0)
    for n_models in (1, 2, 3):
        logits = 3 * torch.randn(n_models, 500, 10, generator=g)
        counts = cs.definition_mismatches(logits.softmax(-1), [0.1, 0.3, 0.5, 0.7, 0.9])
        assert counts == dict.fromkeys(counts, 0)
