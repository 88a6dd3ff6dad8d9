"""Zhang et al. (ICLR 2017), randomization tests: Table 1, Figure 1a/1b/1c, Table 4, Section 3.

Full scale is the paper's setting (Appendix A): all 50,000 CIFAR-10 training images with
Zhang's preprocessing, SGD momentum 0.9, lr 0.1 (Inception) / 0.01 (AlexNet, MLPs), x0.95 per
epoch, batch 128, no regularizer unless the row names one, random labels drawn once; a run has
"fitted" when a full evaluation pass confirms 100% training accuracy. The CIFAR-10 test split
available here is partial (1,000 of 10,000 images), so every test accuracy is judged with a
binomial interval for the n actually used, and the sizes go into the record.

Smoke scale (CPU, real CIFAR-10 fixture images) keeps the claim and shrinks the data:
* MLPs: 2,000 training images (200 per class) and the 1,000 test images. Fitting 2,000 random
  labels with 1.2M parameters still needs ~40 epochs of the unchanged schedule, the test set
  resolves chance (10%) from real learning (~37%), and a run takes ~10 s on an idle 2-core CPU.
* Convolutional models: 100 training images (10 per class), 200 test images, batch 20. A
  small Inception trains at ~100-150 images/s on this CPU (with denormals flushed), so this
  is what fits the 90 s budget per claim; it still asks the network to memorize labels that
  carry no information, which is the claim, and 200 test images still tell chance (10% +-
  5.5 points at 99%) from learning. Absolute test accuracies are far below Table 1 at this
  size, so smoke checks "above chance", full checks the table's values.
* The learning rate follows the paper's schedule per step, not per epoch (x0.95 every 390.6
  steps, ``zhang.step_matched_decay``): a subset's epoch is a few steps, and decaying 0.95
  per few steps would stop training long before a fit. Weights start from TensorFlow's
  default initializer (Glorot uniform), as in the paper's framework (``zhang.INIT``).
* Figure 1a (Inception in the paper) and Figures 1b/1c use MLP 1x512 at smoke: the claims are
  about the data (labels, pixels), which the cheap model shows just as well.
Every tolerance below is fixed in advance from the binomial noise of the test set or from the
paper's own numbers; seeds are 0 (weights, data order) and 0 (label / pixel draws).
"""

from __future__ import annotations

import pytest

from genbench.experiment import Corruption
from genbench.studies import zhang as z

MLPS = ("mlp_1x512", "mlp_3x512")
CONVS = ("alexnet_small", "inception_small", "inception_small_nobn")
BUDGETS = {
    "smoke": {"mlp": z.Budget(2_000, 1_000, 80), "conv": z.Budget(100, 200, 40, batch_size=20)},
    "full": {"mlp": z.Budget(None, None, 300), "conv": z.Budget(None, None, 300)},
}
AUG_EPOCHS = {"smoke": 40, "full": 1_000}  # Appendix E: augmented runs need more epochs
# Figures 1b/1c: the slowdown needs a set big enough that memorizing it is not trivial; the
# MLP sweep uses all 4,000 fixture images (at 2,000, p=1 fitted in as few steps as p=0).
SWEEP = {"smoke": z.Budget(4_000, 1_000, 120), "full": z.Budget(None, None, 300)}
SEED, LABEL_SEED = 0, 0
RANDOM = Corruption("random_labels", 1.0, LABEL_SEED)
TRUE = Corruption()
FIT_ACC = 0.99  # Table 1's lowest "fitted" train accuracy is 99.34 (MLP 1x512, random labels)
# Table 1, no regularizer: (random-label train, random-label test, true-label test) in %.
PAPER = {"mlp_1x512": (99.34, 10.61, 50.51), "mlp_3x512": (100.0, 10.48, 52.39),
         "alexnet_small": (99.82, 9.86, 76.07), "inception_small": (100.0, 9.78, 85.75),
         "inception_small_nobn": (100.0, 10.12, 82.00)}
# Full scale: a true-label test accuracy reproduces Table 1 within 5 points: the 95% binomial
# half-width on 1,000 test images (~3 points at 80%) plus ~2 points of seed-to-seed spread.
TABLE_TOL = 0.05
ZERO_LOSS = 0.2  # "zero training loss": 100% train acc confirmed and loss < 1/10 of ln 10
START_LOSS = 1.5  # Figure 1a "start converging": first step with epoch loss <= 1.5 (ln10=2.30)
CONFIG_NAMES = {"none": "true labels", "random_labels": "random labels",
                "shuffled_pixels": "shuffled pixels", "random_pixels": "random pixels",
                "gaussian_pixels": "Gaussian"}


# Measured at smoke scale (CPU, seed 0) and not reproduced there. Strict: a pass would flag
# that something changed. The bounds stay as stated above; these are the measured numbers.
NOBN = ("inception_small_nobn (lr 0.1, 100 images, batch 20, 40 epochs, Glorot init) does not "
        "train: train acc {train}")
SMOKE_GAPS = {
    "test_fit_random": NOBN.format(train="0.23") + "; mlp_1x512, mlp_3x512, alexnet_small and "
                       "inception_small fit (train acc 1.0) with test acc at chance",
    "test_true_labels": NOBN.format(train="0.12") + ", test acc 95% CI low 0.074 (chance band "
                        "top 0.165); the other four models fit and are above chance",
    "test_batchnorm": NOBN.format(train="0.12") + "; so the test acc drop is 0.15 (bound "
                      "0.0375 + noise) and the no-BN model is not above chance",
    "test_early_stopping": "inception_small_nobn, at chance (see Z.T1.true_labels), has best - "
                           "final test acc 0.075 > its noise 0.047; the other four models: 0.005, "
                           "0.011, 0.040, 0.020, all within noise",
    "test_wd_random": "alexnet_small with weight decay 5e-4 fits 100 random-label images (train "
                      "acc 1.0), where the paper's failed to converge on 50,000; Inception and the "
                      "MLPs fit as claimed",
    "test_aug_random": "small Inception on 100 random-label images reaches online train acc "
                       "0.97 with random crop and 0.97 with flip + rotate within the 40 epochs a "
                       "90 s smoke case allows (bound 0.99; the paper too needed more epochs)",
}


@pytest.fixture(autouse=True)
def smoke_gaps(request: pytest.FixtureRequest, scale: str) -> None:
    """Mark a smoke case that did not reproduce as a strict xfail before the ``claim`` fixture
    reads the marks, so the record carries the measured reason."""
    reason = SMOKE_GAPS.get(request.node.originalname)
    if scale == "smoke" and reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def budget(scale: str, model: str) -> z.Budget:
    return BUDGETS[scale]["mlp" if model.startswith("mlp") else "conv"]


def runs(scale: str, model: str, corruption: Corruption, device, **config):
    """The cached run of ``model`` under ``corruption`` (config changes name a Table 1 row)."""
    b = budget(scale, model)
    cfg = z.fit_config(model, b, **config)
    (result,), train, test = z.train_corrupted(model, z.data_spec(_source(scale), b),
                                               corruption, cfg, (SEED,), device)
    return result, train, test


def _source(scale: str) -> str:
    return "fixture" if scale == "smoke" else "full"


def sweep(scale: str, device):
    b = SWEEP[scale]
    return z.noise_sweep("mlp_1x512", z.data_spec(_source(scale), b),
                         z.fit_config("mlp_1x512", b), z.NOISE_LEVELS, LABEL_SEED, device)


def record_sizes(claim, train, test, **more) -> None:
    claim.sizes(train=train.size_note(), test=test.size_note(), **more)
    claim.seeds(SEED, LABEL_SEED)


def chance(claim, name: str, acc: float, n: int, paper: float | None = None) -> None:
    lo, hi = z.chance_interval(n)  # 99%: five models are checked, each must be at chance
    claim.in_interval(name, acc, lo, hi, paper=paper)


def above_chance(claim, name: str, acc: float, n: int, paper: float | None = None) -> None:
    """The 95% interval of the measured accuracy lies wholly above the 99% chance band."""
    claim.at_least(name + " (95% CI low)", z.accuracy_interval(acc, n)[0],
                   z.chance_interval(n)[1], paper=paper)


@pytest.mark.claim("Z.T1.fit_random", source="Zhang et al. 2017, Table 1 (random labels)",
                   statement="MLP 1x512, MLP 3x512, small AlexNet, small Inception and Inception "
                             "w/o BatchNorm reach ~100% train accuracy on CIFAR-10 with random "
                             "labels; test accuracy stays at chance")
def test_fit_random(claim, scale, device):
    for model in MLPS + CONVS:
        r, train, test = runs(scale, model, RANDOM, device)
        claim.at_least(f"{model} train_acc", r.final["train_acc"], FIT_ACC,
                       paper=PAPER[model][0] / 100)
        chance(claim, f"{model} test_acc", r.final["test_acc"], len(test), PAPER[model][1] / 100)
        claim.note(f"{model} fit_epoch", r.fit_epoch)
        claim.sizes(**{model: f"train {train.size_note()}, test {test.size_note()}"})
    claim.seeds(SEED, LABEL_SEED)
    claim.conclude()


@pytest.mark.claim("Z.T1.true_labels", source="Zhang et al. 2017, Table 1 (no regularizer)",
                   statement="the same models on true labels without regularization reach 100% "
                             "train accuracy and test accuracy far above chance "
                             "(50.51 / 52.39 / 76.07 / 85.75 / 82.00)")
def test_true_labels(claim, scale, device):
    for model in MLPS + CONVS:
        r, train, test = runs(scale, model, TRUE, device)
        paper = PAPER[model][2] / 100
        claim.at_least(f"{model} train_acc", r.final["train_acc"], FIT_ACC, paper=1.0)
        above_chance(claim, f"{model} test_acc", r.final["test_acc"], len(test), paper)
        if scale == "full":
            claim.within(f"{model} test_acc vs Table 1", r.final["test_acc"], paper,
                         abs_tol=TABLE_TOL)
        claim.sizes(**{model: f"train {train.size_note()}, test {test.size_note()}"})
    claim.seeds(SEED)
    claim.conclude()


@pytest.mark.claim("Z.T1.regularizers", source="Zhang et al. 2017, Table 1 and Section 3",
                   statement="weight decay and random crop each help test accuracy a little; "
                             "without them models still generalize")
def test_regularizers(claim, scale, device):
    # Table 1's gains are 0.3-3.6 points, at or below what 1,000 (smoke conv: 200) test
    # images resolve; so the check is that a regularizer does not cost more than that noise
    # (the gain itself is recorded), and that the unregularized model is far above chance.
    rows = (("mlp_3x512", "weight decay", dict(weight_decay=z.WEIGHT_DECAY), 53.35, 52.39),
            ("alexnet_small", "random crop", dict(augment=z.RANDOM_CROP), 79.66, 76.07))
    for model, name, change, paper_reg, paper_none in rows:
        base, _, test = runs(scale, model, TRUE, device)
        reg, _, _ = runs(scale, model, TRUE, device, **change)
        n, acc = len(test), base.final["test_acc"]
        gain = reg.final["test_acc"] - acc
        claim.at_least(f"{model} {name} gain", gain, -z.difference_noise(acc, n),
                       paper=(paper_reg - paper_none) / 100)
        above_chance(claim, f"{model} no regularizer test_acc", acc, n, paper_none / 100)
        claim.note(f"{model} {name} test_acc", reg.final["test_acc"])
        claim.sizes(**{model: f"test {test.size_note()}"})
    claim.note("weight_decay", z.WEIGHT_DECAY)
    claim.seeds(SEED)
    claim.conclude()


@pytest.mark.claim("Z.F1a.input_randomization", source="Zhang et al. 2017, Figure 1a, Sec. 2.1",
                   statement="true labels, random labels, shuffled pixels, random pixels and "
                             "Gaussian inputs all reach zero training loss; random pixels and "
                             "Gaussian start converging faster than random labels")
def test_input_randomization(claim, scale, device):
    model = "mlp_1x512" if scale == "smoke" else "inception_small"  # Figure 1a: Inception
    series, start = {}, {}
    for kind in z.INPUT_CORRUPTIONS:
        corruption = Corruption(kind, 1.0, LABEL_SEED) if kind != "none" else TRUE
        # trained until the loss itself is (near) zero: ZERO_LOSS, confirmed by an eval pass
        r, train, test = runs(scale, model, corruption, device, stop="loss",
                              stop_target=ZERO_LOSS)
        label = CONFIG_NAMES[kind]
        claim.holds(f"{label} reached train loss {ZERO_LOSS} (confirmed)", r.fitted,
                    measured=r.final["train_loss"], expected=f"<= {ZERO_LOSS}")
        claim.at_least(f"{label} final train_acc", r.final["train_acc"], FIT_ACC, paper=1.0)
        start[kind] = z.steps_to_loss(r, START_LOSS)
        claim.note(f"{label} steps to loss {START_LOSS}", start[kind])
        series[label] = z.curve(r, "step", "train_loss")
    for kind in ("random_pixels", "gaussian_pixels"):
        claim.holds(f"{CONFIG_NAMES[kind]} starts converging before random labels",
                    start[kind] is not None and start["random_labels"] is not None
                    and start[kind] < start["random_labels"],
                    measured=start[kind], expected=f"< {start['random_labels']}")
    record_sizes(claim, train, test, model=model)
    claim.figure("zhang_fig1a", f"Training loss ({model}, CIFAR-10)", "line", "step",
                 "training loss", series)
    claim.conclude()


@pytest.mark.claim("Z.F1b.slowdown", source="Zhang et al. 2017, Figure 1b",
                   statement="with label corruption p in {0, .2, .4, .6, .8, 1} the training set "
                             "is always fitted; time to fit grows with p")
def test_slowdown(claim, scale, device):
    results, train, test = sweep(scale, device)
    steps = [r.fit_step or float("nan") for r in results]
    for p, r in zip(z.NOISE_LEVELS, results):
        claim.holds(f"p={p} fitted", r.fitted, measured=r.final["train_acc"], expected=1.0)
    trend = z.slowdown(z.NOISE_LEVELS, steps)
    # Pre-stated: the steps to fit rise with p (Spearman rho > 0) and p=1 takes longer than p=0.
    claim.at_least("spearman rho(steps to fit, p)", trend["spearman_rho"], 1e-9)
    claim.at_least("steps to fit p=1 / p=0", trend["ratio_last_first"], 1.0 + 1e-9)
    claim.note("spearman p-value", trend["spearman_p"])
    claim.note("fit_steps", steps)
    claim.note("fit_epochs", [r.fit_epoch for r in results])
    seconds = [r.fit_seconds for r in results]
    claim.note("fit_seconds", seconds)
    if all(seconds):
        claim.note("seconds p=1 / p=0", seconds[-1] / seconds[0])
    record_sizes(claim, train, test, model="mlp_1x512")
    claim.figure("zhang_fig1b", "Steps to fit vs label corruption (MLP 1x512)", "line",
                 "label corruption p", "steps to fit", {"mlp_1x512": {
                     "x": list(z.NOISE_LEVELS), "y": steps}})
    claim.conclude()


@pytest.mark.claim("Z.F1c.test_error", source="Zhang et al. 2017, Figure 1c",
                   statement="after fitting, test error grows steadily with p and approaches "
                             "90% (chance) at p=1")
def test_test_error(claim, scale, device):
    results, train, test = sweep(scale, device)
    errors = [1.0 - r.final["test_acc"] for r in results]
    trend = z.slowdown(z.NOISE_LEVELS, errors)
    claim.at_least("spearman rho(test error, p)", trend["spearman_rho"], 0.8)  # "steadily"
    chance(claim, "p=1 test_acc", results[-1].final["test_acc"], len(test), paper=0.1)
    claim.note("test_error", errors)
    record_sizes(claim, train, test, model="mlp_1x512")
    claim.figure("zhang_fig1c", "Test error after fitting vs label corruption (MLP 1x512)",
                 "line", "label corruption p", "test error",
                 {"mlp_1x512": {"x": list(z.NOISE_LEVELS), "y": errors}})
    claim.conclude()


@pytest.mark.claim("Z.T4.wd_random", source="Zhang et al. 2017, Table 4 (Appendix E)",
                   statement="with weight decay, Inception and the MLPs still fit random labels; "
                             "small AlexNet fails to converge")
def test_wd_random(claim, scale, device):
    paper = {"inception_small": 1.0, "mlp_3x512": 1.0, "mlp_1x512": 0.9921}
    for model, acc in paper.items():
        r, _, _ = runs(scale, model, RANDOM, device, weight_decay=z.WEIGHT_DECAY)
        claim.at_least(f"{model} train_acc", r.final["train_acc"], FIT_ACC, paper=acc)
    alex, train, test = runs(scale, "alexnet_small", RANDOM, device,
                             weight_decay=z.WEIGHT_DECAY)
    claim.holds("alexnet_small does not fit", not alex.fitted,
                measured=alex.final["train_acc"], expected="not fitted in the budget")
    claim.note("weight_decay", z.WEIGHT_DECAY)
    claim.seeds(SEED, LABEL_SEED)
    claim.conclude()


@pytest.mark.claim("Z.T4.aug_random", source="Zhang et al. 2017, Table 4 (Appendix E)",
                   statement="with random cropping, or flip + rotation up to 25 degrees, small "
                             "Inception still fits random labels (online accuracy)")
def test_aug_random(claim, scale, device):
    b = budget(scale, "inception_small")
    b = z.Budget(b.n_train, b.n_test, AUG_EPOCHS[scale], b.batch_size, eval_every=AUG_EPOCHS[scale])
    spec = z.data_spec(_source(scale), b)
    for name, augment, paper in (("random crop", z.RANDOM_CROP, 0.9993),
                                 ("flip + rotate 25", z.FLIP_ROTATE, 0.9928)):
        cfg = z.augmented_config("inception_small", b, augment)
        (r,), train, test = z.train_corrupted("inception_small", spec, RANDOM, cfg, (SEED,),
                                              device)
        claim.at_least(f"{name} online train_acc", max(r.curves["train_acc"]), FIT_ACC,
                       paper=paper)
        claim.note(f"{name} epochs", r.epochs)
    record_sizes(claim, train, test, lr_decay=str(z.AUGMENT_LR_DECAY))
    claim.conclude()


@pytest.mark.claim("Z.S3.batchnorm", source="Zhang et al. 2017, Table 1 and Section 3",
                   statement="removing BatchNorm from small Inception costs only a few points of "
                             "test accuracy (85.75 vs 82.00)")
def test_batchnorm(claim, scale, device):
    bn, train, test = runs(scale, "inception_small", TRUE, device)
    nobn, _, _ = runs(scale, "inception_small_nobn", TRUE, device)
    n = len(test)
    drop = bn.final["test_acc"] - nobn.final["test_acc"]
    # "A few points": the paper's 3.75 plus the noise of a difference of two accuracies.
    bound = 0.0375 + z.difference_noise(bn.final["test_acc"], n)
    claim.at_most("test_acc drop without BatchNorm", drop, bound, paper=0.0375)
    above_chance(claim, "without BatchNorm test_acc", nobn.final["test_acc"], n, paper=0.82)
    record_sizes(claim, train, test)
    claim.conclude()


@pytest.mark.claim("Z.S3.early_stopping", source="Zhang et al. 2017, Section 3",
                   statement="on CIFAR-10 the best test accuracy during training is not "
                             "materially above the final one")
def test_early_stopping(claim, scale, device):
    # "Materially": more than the noise of a difference of two accuracies on n test images
    # (1.96 standard errors); a best-of-epochs is biased up by about that much by chance alone.
    for model in MLPS + CONVS:
        r, _, test = runs(scale, model, TRUE, device)
        final = r.final["test_acc"]
        claim.at_most(f"{model} best - final test_acc", z.best_test_acc(r) - final,
                      z.difference_noise(final, len(test)), paper=0.0)
        claim.sizes(**{model: f"test {test.size_note()}"})
    claim.seeds(SEED)
    claim.conclude()
