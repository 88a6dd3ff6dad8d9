"""Consensus paper: overfitting mechanism (Sections II-III) and consensus-based classification
(Algorithm 1, Section V). C.S3.softmax_scale lives in test_consensus_softmax.py.

Setting (Section V): MNIST, 1,000 training images, the test set as validation set; USPS
7,291 / 2,007 for Figures 3 and 5; three architectures (``c_cnn`` is Section II's network).
The paper names no optimizer: Adam lr 1e-3, Keras' default batch of 32 (see
``genbench.studies.consensus``). All runs, shared between claims through the run cache, come
from ``genbench.studies.consensus``; seeds are 0 (and 1 for Figure 1's second solution).

Every bound below was fixed before the first measurement; the reasons are next to each.
"""

import pytest

from genbench.analysis import good_range
from genbench.experiment import DataSpec
from genbench.papers.consensus import CONSENSUS, FIGURE1
from genbench.stats import binomial_floor, seed_spread
from genbench.studies import consensus as cs

SETTINGS = {
    # Smoke: the paper's 1,000 MNIST training images (100 per class of the 4,000-image fixture)
    # but 2,000 test images (the fixture's) instead of 10,000; the paper's 20 epochs, since
    # undertrained members (10 epochs, dropout 0.75) would test training length, not Algorithm 1.
    # USPS: the fixture is the whole data set (7,291 / 2,007), as in Figures 3 and 5.
    "smoke": cs.Setting(mnist=DataSpec("mnist", n_train=1000), usps=DataSpec("usps"),
                        mnist_epochs=20, usps_epochs=20),
    "full": cs.Setting(mnist=DataSpec("mnist", source="full", n_train=1000),
                       usps=DataSpec("usps", source="full"), mnist_epochs=20, usps_epochs=20),
}
THRESHOLDS = tuple(round(0.10 + 0.01 * i, 2) for i in range(90))  # p_t = 0.10, 0.11, ..., 0.99
# Below p_t = 0.1 Algorithm 1 rejects almost nothing (Section IV.B: the ambiguous sample of
# Figure 4(c) is rejected "for any value p_t >= 0.1"), so Figures 6-8 start there.
ALPHAS = tuple(round(-1.5 + 0.1 * i, 1) for i in range(41))  # -1.5 ... 2.5 in steps of 0.1
# Symmetric about 0.5, it holds the paper's range (-1.0, 0.4) and its mirror image (0.6, 2.0).

# Figure 1. "Good" is not defined numerically in the paper; an interpolated network is good
# when its test accuracy is at most 2 points below the worse of the two solutions (about twice
# the 95% binomial half-width of a ~93% accuracy on 2,000 test images). "Reproduced" means the
# good range contains the paper's range (-1.0, 0.4) around w2 (alpha = 0): it reaches at least
# 1.0 outward (alpha <= -1.0) and 0.4 inward (alpha >= 0.4) on the 0.1 grid of ALPHAS. A shorter
# range is a range the paper did not show, so it does not reproduce Figure 1 (no partial credit).
GOOD_MARGIN = 0.02
PAPER_RANGE = FIGURE1.good_range  # genbench.papers.consensus
PAPER_REACH = (-PAPER_RANGE[0], PAPER_RANGE[1])  # outward beyond w2, inward towards w1
GRID_EPS = 1e-9  # reaches are differences of grid values: compare up to float rounding
# Figures 2-3. Figure 2 is on MNIST (1,000 training images, the 10,000 test images as validation
# set; smoke: the fixture's 2,000), Figure 3 on USPS (the paper: "Figures 3 and 5 are based on"
# USPS). The overfitting phase runs from the epoch of least validation loss to the last; it needs
# >= 5 epochs for a slope. The validation loss must rise: the rise (last / minimum - 1) of the
# verdict's seed 0 must exceed RISE_SDS standard deviations of the same rise measured on
# SPREAD_SEEDS (other seeds, never the verdict's): a rise within 3 seed-to-seed SDs of zero is
# not told apart from run-to-run noise (the old fixed 5% sat inside that noise, and the USPS
# verdict flipped with the torch thread count: 3.7% with 2 threads, 9.5% with 1). "Flat" accuracy
# moves by <= 2 points over the phase (about twice the 95% binomial half-width of a ~90%
# accuracy on 2,000 validation images).
MIN_PHASE_EPOCHS = 5
SPREAD_SEEDS = (1, 2, 3)
RISE_SDS = 3.0
FLAT_ACC = 0.02
# Abstract: "95% accuracy ... with 90% of the test samples classified". The best consensus
# accuracy at coverage >= 90% must not be significantly (one-sided 2.5%, binomial) below 95%.
PAPER_ACC, PAPER_COVERAGE = CONSENSUS.accuracy, CONSENSUS.coverage
# Figure 5: overlap = 2 min(A, 1 - A), A the AUROC of telling wrong from right by loss.
# "Overlap very little": <= 0.10 at every epoch, i.e. a misclassified sample's loss exceeds a
# correctly classified one's with probability >= 0.95.
MAX_OVERLAP = 0.10
# Figure 8: "the difference between these three are not significant". A dropout rate that moved
# the consensus accuracy by more than 3 points at some threshold would be a visible effect.
MAX_DROPOUT_GAP = 0.03

SOURCE = "Consensus-based classification and overfitting (Sections II-V)"


def _line(xs, ys_by_label):
    return {label: {"x": list(xs), "y": list(ys)} for label, ys in ys_by_label.items()}


@pytest.mark.claim("C.S2.interpolation", source=f"{SOURCE}, Section II, Figure 1",
                   statement="along w = a*w1 + (1-a)*w2 between two good solutions there is a "
                             "range of a with good solutions (the paper shows -1.0 to 0.4)",
                   paper="Figure 1: good solutions for alpha in (-1.0, 0.4)",
                   xfail={"smoke": "c_cnn on the 1,000-image MNIST fixture (2,000 test images): "
                                   "the good range around w2 does not contain the paper's "
                                   "(-1.0, 0.4)"})
def test_interpolation(claim, scale, device):
    s = SETTINGS[scale]
    path = cs.interpolation(s, ALPHAS, device)
    acc = dict(zip(ALPHAS, path.accuracy.tolist()))
    level = min(acc[0.0], acc[1.0]) - GOOD_MARGIN
    good = good_range(path.alphas, path.accuracy, level)
    outward, inward = cs.reach(good)

    claim.sizes(**cs.size_notes(s.mnist))
    claim.seeds(*cs.SOLUTION_SEEDS)
    claim.note("good_level", level)
    claim.note("good_range", list(good))
    claim.note("paper_range", list(PAPER_RANGE))
    claim.note("accuracy_w1_w2", [acc[1.0], acc[0.0]])
    claim.at_least("outward_reach (good range reaches alpha = -1.0)", outward,
                   PAPER_REACH[0] - GRID_EPS, paper=PAPER_REACH[0])
    claim.at_least("inward_reach (good range reaches alpha = 0.4)", inward,
                   PAPER_REACH[1] - GRID_EPS, paper=PAPER_REACH[1])
    claim.figure("consensus_fig1a", "Figure 1(a): test loss along alpha*w1 + (1-alpha)*w2",
                 "line", "alpha", "test loss", _line(ALPHAS, {"c_cnn": path.loss}))
    claim.figure("consensus_fig1b", "Figure 1(b): test accuracy along alpha*w1 + (1-alpha)*w2",
                 "line", "alpha", "test accuracy",
                 _line(ALPHAS, {"c_cnn": path.accuracy, "good level": [level] * len(ALPHAS)}))
    claim.conclude()


@pytest.mark.claim("C.S3.val_loss_split", source=f"{SOURCE}, Section III, Figures 2-3",
                   statement="while validation accuracy stays flat, validation loss rises; the "
                             "rise comes from misclassified samples (their loss grows) while "
                             "correctly classified samples' loss falls; the softmax inputs' "
                             "magnitude grows",
                   paper="Figure 2: MNIST, 1,000 training / 10,000 validation images; Figure 3: "
                         "USPS 7,291 / 2,007 (curves only, no numbers)",
                   xfail={"smoke": "MNIST c_cnn, 1,000 fixture images, 20 epochs: the validation-"
                                   "loss minimum comes too late for a 5-epoch overfitting phase "
                                   "(same epoch with 1 and 2 torch threads); the USPS loss split "
                                   "and the logit norms reproduce"})
def test_val_loss_split(claim, scale, device):
    s = SETTINGS[scale]
    # Figure 2 (MNIST): the validation loss rises while the accuracy stays flat
    m = cs.loss_dynamics(s, device, seed=0, dataset="mnist")
    best, last = m.best_epoch, m.epochs[-1]
    rise = m.loss_rise
    spread = seed_spread(cs.loss_rises(s, SPREAD_SEEDS, device, dataset="mnist"))
    claim.at_least("mnist: overfitting_phase_epochs", last - best + 1, MIN_PHASE_EPOCHS)
    claim.at_least(f"mnist: validation_loss_rise (>= {RISE_SDS:g} SD of seeds "
                   f"{', '.join(map(str, SPREAD_SEEDS))})", rise, spread.band(RISE_SDS))
    claim.at_most("mnist: validation_accuracy_change",
                  abs(m.test_acc[-1] - m.test_acc[best - 1]), FLAT_ACC)
    claim.holds("mnist: logit_norm_grows", m.logit_norm_last > m.logit_norm_best,
                measured=m.logit_norm_last - m.logit_norm_best, expected="> 0 (last - best epoch)")
    claim.note("mnist: rise on the spread seeds", list(spread.values))
    claim.note("mnist: best_epoch", best)
    # Figure 3 (USPS): the rise comes from the misclassified samples
    u = cs.loss_dynamics(s, device, seed=0, dataset="usps")
    ub = u.best_epoch
    wrong, right = cs.phase_slope(u.loss_wrong, ub), cs.phase_slope(u.loss_correct, ub)
    claim.at_least("usps: overfitting_phase_epochs", u.epochs[-1] - ub + 1, MIN_PHASE_EPOCHS)
    claim.holds("usps: misclassified_loss_rises", wrong > 0, measured=wrong, expected="> 0")
    claim.holds("usps: correct_loss_falls", right < 0, measured=right, expected="< 0")
    claim.holds("usps: logit_norm_grows", u.logit_norm_last > u.logit_norm_best,
                measured=u.logit_norm_last - u.logit_norm_best, expected="> 0 (last - best epoch)")
    claim.note("usps: best_epoch", ub)
    claim.note("usps: whole_run_slopes", {"wrong": cs.phase_slope(u.loss_wrong, 1),
                                          "correct": cs.phase_slope(u.loss_correct, 1)})
    claim.note("usps: n_wrong", u.n_wrong)
    claim.note("logit_norm_per_epoch", {"mnist": m.logit_norms, "usps": u.logit_norms})
    claim.sizes(**cs.size_notes(s.mnist), **cs.size_notes(s.usps))
    claim.seeds(0, *SPREAD_SEEDS)
    claim.figure("consensus_fig2a", "Figure 2(a): training and validation loss (MNIST)", "line",
                 "epoch", "loss", _line(m.epochs, {"training": m.train_loss,
                                                   "validation": m.test_loss}))
    claim.figure("consensus_fig3", "Figure 3: validation loss of correctly / incorrectly "
                 "classified samples (USPS)", "line", "epoch", "mean loss",
                 _line(u.epochs, {"correct": u.loss_correct, "incorrect": u.loss_wrong}),
                 logy=True)
    claim.conclude()


@pytest.mark.claim("C.A1.consensus", source=f"{SOURCE}, Algorithm 1",
                   statement="Algorithm 1: P_min = class-wise minimum of the models' "
                             "probabilities; classify as argmax P_min if max P_min > p_t, else "
                             "reject; extends to k-of-n")
def test_algorithm1(claim, scale, device):
    s = SETTINGS[scale]
    runs, _ = cs.members(s, device)
    mismatches = cs.definition_mismatches(cs.stacked_probs(runs), THRESHOLDS)

    claim.sizes(**cs.size_notes(s.mnist), models=", ".join(runs),
                thresholds=f"{len(THRESHOLDS)} values of p_t in [0.10, 0.99]")
    claim.seeds(0)
    for name, count in mismatches.items():
        claim.at_most(f"{name}_mismatches", count, 0)
    claim.conclude()


@pytest.mark.claim("C.S5.consensus_beats_single", source=f"{SOURCE}, Abstract, Figures 6-7",
                   statement="at every threshold the consensus of 3 models has higher accuracy "
                             "on the samples it classifies than any single model; with 1,000 "
                             "MNIST training samples it reaches ~95% accuracy while classifying "
                             "~90% of test samples")
def test_consensus_beats_single(claim, scale, device):
    s = SETTINGS[scale]
    runs, test = cs.members(s, device)
    curves = cs.sweeps(runs, test.y, THRESHOLDS)
    best_single = curves[cs.ARCHITECTURES[0]].accuracy
    for arch in cs.ARCHITECTURES[1:]:
        best_single = best_single.fmax(curves[arch].accuracy)
    margin = curves["consensus"].accuracy - best_single
    threshold, acc, cov = cs.best_at_coverage(curves["consensus"], PAPER_COVERAGE)
    floor = binomial_floor(PAPER_ACC, round(cov * len(test.y)))

    claim.sizes(**cs.size_notes(s.mnist))
    claim.seeds(0)
    claim.holds("consensus_beats_best_single_everywhere", bool((margin > 0).all()),
                measured=float(margin.min()), expected="> 0 at every p_t in [0.10, 0.99]")
    claim.at_least("consensus_accuracy_at_90pct_coverage", acc, floor, paper=PAPER_ACC)
    claim.note("operating_point", {"p_t": threshold, "accuracy": acc, "coverage": cov})
    claim.note("single_model_test_acc", {a: r.final["test_acc"] for a, r in runs.items()})
    claim.figure("consensus_fig7a", "Figures 6(a)/7(a): accuracy on classified samples (MNIST)",
                 "line", "threshold p_t", "accuracy",
                 _line(THRESHOLDS, {k: c.accuracy for k, c in curves.items()}))
    claim.figure("consensus_fig7b", "Figures 6(b)/7(b): fraction of samples classified (MNIST)",
                 "line", "threshold p_t", "coverage",
                 _line(THRESHOLDS, {k: c.coverage for k, c in curves.items()}))
    claim.conclude()


@pytest.mark.claim("C.S5.loss_distributions", source=f"{SOURCE}, Section V.A, Figure 5",
                   statement="per-sample validation losses of correctly and incorrectly "
                             "classified samples barely overlap")
def test_loss_distributions(claim, scale, device):
    s = SETTINGS[scale]
    d = cs.loss_dynamics(s, device, seed=0, dataset="usps")
    shown = sorted({1, len(d.epochs) // 2, len(d.epochs)})

    claim.sizes(**cs.size_notes(s.usps), epochs=f"{len(d.epochs)} per-epoch models")
    claim.seeds(0)
    claim.at_most("largest_overlap_over_epochs", max(d.overlap), MAX_OVERLAP)
    claim.note("overlap_per_epoch", d.overlap)
    for part, label in ((0, "a"), (1, "b")):
        name = ("correctly", "incorrectly")[part]
        claim.figure(f"consensus_fig5{label}", f"Figure 5({label}): log10 loss of {name} "
                     "classified samples (USPS), floored at 1e-6", "hist", "log10 loss", "count",
                     {f"epoch {e}": {"values": d.losses[e - 1][part].clamp_min(1e-6).log10()}
                      for e in shown})
    claim.conclude()


@pytest.mark.claim("C.S5.dropout", source=f"{SOURCE}, Section V.C, Figure 8",
                   statement="dropout 0.25 / 0.5 / 0.75 changes the consensus accuracy curves "
                             "only slightly")
def test_dropout(claim, scale, device):
    s = SETTINGS[scale]
    curves = cs.dropout_sweeps(s, THRESHOLDS, device)
    gap = cs.largest_gap([c.accuracy for c in curves.values()])

    claim.sizes(**cs.size_notes(s.mnist), dropout="both dropout layers of all three members")
    claim.seeds(0)
    claim.at_most("largest_accuracy_gap", gap, MAX_DROPOUT_GAP)
    claim.note("largest_coverage_gap", cs.largest_gap([c.coverage for c in curves.values()]))
    claim.figure("consensus_fig8a", "Figure 8(a): consensus accuracy per dropout rate (MNIST)",
                 "line", "threshold p_t", "accuracy",
                 _line(THRESHOLDS, {f"dropout {p}": c.accuracy for p, c in curves.items()}))
    claim.figure("consensus_fig8b", "Figure 8(b): consensus coverage per dropout rate (MNIST)",
                 "line", "threshold p_t", "coverage",
                 _line(THRESHOLDS, {f"dropout {p}": c.coverage for p, c in curves.items()}))
    claim.conclude()
