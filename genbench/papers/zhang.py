"""Zhang, Bengio, Hardt, Recht, Vinyals (ICLR 2017), "Understanding deep learning requires
rethinking generalization": Tables 1, 2 and 4 and the numbers behind Figure 1.

Model keys are genbench's registry names: ``inception_small`` (the paper's small Inception,
Figure 3), ``inception_small_nobn`` (Inception w/o BatchNorm), ``alexnet_small`` (small
AlexNet), ``mlp_3x512`` and ``mlp_1x512``. Accuracies are fractions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table1Row:
    """One row of Table 1: a model trained with or without random crop and weight decay, on
    true labels or (``random_labels``) on random labels; train and test accuracy."""

    model: str
    random_crop: bool
    weight_decay: bool
    train: float
    test: float
    random_labels: bool = False

    @property
    def regularizer(self) -> str:
        """``"none"``, ``"crop"``, ``"wd"`` or ``"crop_wd"``: the row's name within its model."""
        parts = [name for name, on in (("crop", self.random_crop), ("wd", self.weight_decay)) if on]
        return "_".join(parts) or "none"


@dataclass(frozen=True)
class Table1Model:
    """Table 1's rows of one model, named: the unregularized true-label row (``train``,
    ``test``), the random-label row (``random_train``, ``random_test``) and the regularized
    true-label rows (``regularized``, keyed by :attr:`Table1Row.regularizer`)."""

    model: str
    params: int
    train: float
    test: float
    random_train: float
    random_test: float
    regularized: dict[str, Table1Row]


TABLE1_ROWS: tuple[Table1Row, ...] = (
    # Table 1 (Zhang et al. 2017, p. 5): model, random crop, weight decay, train %, test %
    Table1Row("inception_small", True, True, 1.0000, 0.8905),
    Table1Row("inception_small", True, False, 1.0000, 0.8931),
    Table1Row("inception_small", False, True, 1.0000, 0.8603),
    Table1Row("inception_small", False, False, 1.0000, 0.8575),
    Table1Row("inception_small", False, False, 1.0000, 0.0978, random_labels=True),
    Table1Row("inception_small_nobn", False, True, 1.0000, 0.8300),
    Table1Row("inception_small_nobn", False, False, 1.0000, 0.8200),
    Table1Row("inception_small_nobn", False, False, 1.0000, 0.1012, random_labels=True),
    Table1Row("alexnet_small", True, True, 0.9990, 0.8122),
    Table1Row("alexnet_small", True, False, 0.9982, 0.7966),
    Table1Row("alexnet_small", False, True, 1.0000, 0.7736),
    Table1Row("alexnet_small", False, False, 1.0000, 0.7607),
    Table1Row("alexnet_small", False, False, 0.9982, 0.0986, random_labels=True),
    Table1Row("mlp_3x512", False, True, 1.0000, 0.5335),
    Table1Row("mlp_3x512", False, False, 1.0000, 0.5239),
    Table1Row("mlp_3x512", False, False, 1.0000, 0.1048, random_labels=True),
    Table1Row("mlp_1x512", False, True, 0.9980, 0.5039),
    Table1Row("mlp_1x512", False, False, 1.0000, 0.5051),
    Table1Row("mlp_1x512", False, False, 0.9934, 0.1061, random_labels=True),
)
PARAMS = {"inception_small": 1_649_402, "inception_small_nobn": 1_649_402,
          "alexnet_small": 1_387_786, "mlp_3x512": 1_735_178, "mlp_1x512": 1_209_866}
MODELS = tuple(PARAMS)  # Table 1's order


def _model(name: str) -> Table1Model:
    rows = [r for r in TABLE1_ROWS if r.model == name]
    (none,) = [r for r in rows if not r.random_labels and r.regularizer == "none"]
    (rand,) = [r for r in rows if r.random_labels]
    return Table1Model(name, PARAMS[name], none.train, none.test, rand.train, rand.test,
                       {r.regularizer: r for r in rows
                        if not r.random_labels and r.regularizer != "none"})


TABLE1: dict[str, Table1Model] = {name: _model(name) for name in MODELS}
# The nine regularized true-label rows, named model-regularizer (e.g. "alexnet_small-crop_wd").
TABLE1_REGULARIZED: dict[str, Table1Row] = {
    f"{r.model}-{r.regularizer}": r for r in TABLE1_ROWS
    if not r.random_labels and r.regularizer != "none"}


@dataclass(frozen=True)
class Table4Row:
    """Table 4 (Appendix E): random labels with a regularizer; ``train`` None = "failed to
    converge"."""

    model: str
    regularizer: str
    train: float | None


TABLE4: dict[str, Table4Row] = {
    "inception_small-weight_decay": Table4Row("inception_small", "weight decay", 1.0),
    "alexnet_small-weight_decay": Table4Row("alexnet_small", "weight decay", None),
    "mlp_3x512-weight_decay": Table4Row("mlp_3x512", "weight decay", 1.0),
    "mlp_1x512-weight_decay": Table4Row("mlp_1x512", "weight decay", 0.9921),
    "inception_small-random_crop": Table4Row("inception_small", "random cropping", 0.9993),
    "inception_small-flip_rotate": Table4Row("inception_small",
                                             "flip + rotation up to 25 degrees", 0.9928),
}


@dataclass(frozen=True)
class Table2:
    """Table 2 (Appendix): Inception V3 on ImageNet, top-1 accuracies."""

    random_train: float = 0.9520  # random labels, no regularizer: top-1 train
    true_test_no_reg: float = 0.5980  # true labels, no augmentation / dropout / weight decay


TABLE2 = Table2()


@dataclass(frozen=True)
class Figure1:
    """Figure 1 (Section 2): the settings it plots and the one value its text states."""

    noise_levels: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # Figure 1b/1c, x axis
    input_corruptions: tuple[str, ...] = ("none", "random_labels", "shuffled_pixels",
                                          "random_pixels", "gaussian_pixels")  # Figure 1a
    chance_error: float = 0.90  # "the generalization errors converge to 90%" (p = 1)
    figure1a_model: str = "inception_small"  # "learning curves of the Inception model"
    figure1b_models: tuple[str, ...] = ("inception_small", "alexnet_small", "mlp_1x512")


FIGURE1 = Figure1()


# ------------------------------------------------------------------ Table 3 and Section 5
# (appended by the Claims-B helper; the kernel and theory claims read these)


@dataclass(frozen=True)
class Table3Row:
    """One row of Table 3 ("Generalizing with kernels"): Gaussian-kernel interpolation, the
    kernel equation solved exactly on the whole training set (``n``), test error."""

    dataset: str
    preprocessing: str
    test_error: float
    n: int  # the training set solved on: all of MNIST / CIFAR-10's training images


TABLE3: dict[str, Table3Row] = {
    # Table 3 (Appendix D) and Section 5: test error
    "mnist_raw": Table3Row("mnist", "none", 0.012, 60_000),
    "mnist_gabor": Table3Row("mnist", "gabor filters", 0.006, 60_000),
    "cifar_raw": Table3Row("cifar10", "none", 0.46, 50_000),
    "cifar_conv": Table3Row("cifar10", "random conv-net", 0.17, 50_000),
    # Section 5 only (not in Table 3): "Adding l2 regularization further reduces this to 15%"
    "cifar_conv_l2": Table3Row("cifar10", "random conv-net + l2", 0.15, 50_000),
}


@dataclass(frozen=True)
class Section5:
    """Section 5's other numbers: the random conv-net's filter count and the min-norm norms."""

    random_filters: int = 32_000  # "a random convolutional neural net with 32,000 random filters"
    norm_mnist_raw: float = 220.0  # "...with no preprocessing is approximately 220" (MNIST)
    norm_mnist_gabor: float = 390.0  # "With wavelet preprocessing, the norm jumps to 390"


SECTION5 = Section5()
