"""Consensus-based classification and overfitting (the consensus paper): its numbers, once.

The paper prints few numbers; these are its settings (Sections II, V), the toy softmax example
of Section III, the range of Figure 1 and the abstract's accuracy/coverage, as named records.
Accuracies are fractions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSetting:
    """Section V: the data sets and which figures use them."""

    mnist_train: int = 1_000  # "we used only 1000 as our training samples out of 60,000"
    mnist_validation: int = 10_000  # "10,000 are validation samples" (the test set)
    usps_train: int = 7_291  # "7291 are training samples"
    usps_validation: int = 2_007  # "and 2007 are test/validation samples"
    usps_figures: tuple[int, ...] = (3, 5)  # "Figures 3 and 5 are based on ... this dataset"
    # "All the other figures ... MNIST": Figures 1, 2, 6, 7, 8


@dataclass(frozen=True)
class SectionIINetwork:
    """Section II's network (genbench's ``c_cnn``): conv 32 3x3, max-pool 2x2, ReLU, dropout
    0.25, FC 128, ReLU, dropout 0.5, FC 10 softmax."""

    filters: int = 32
    kernel: int = 3
    pool: int = 2
    dropout_conv: float = 0.25
    hidden: int = 128
    dropout_fc: float = 0.50
    classes: int = 10


@dataclass(frozen=True)
class SoftmaxExample:
    """Section III's toy example: softmax of {0, 0.5, 1, 2} and of 1.25 times it."""

    logits: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    scale: float = 1.25
    probs: tuple[float, ...] = (0.0784, 0.1292, 0.2131, 0.5793)
    scaled_probs: tuple[float, ...] = (0.0539, 0.1008, 0.1882, 0.6571)
    loss_class4: tuple[float, float] = (0.5460, 0.4200)  # before, after scaling
    loss_class1: tuple[float, float] = (2.5460, 2.9200)


@dataclass(frozen=True)
class Figure1:
    """Section II, Figure 1: "within certain range (-1.0 to 0.4) of alpha, there are many good
    solutions" on w = alpha w1 + (1 - alpha) w2."""

    good_range: tuple[float, float] = (-1.0, 0.4)


@dataclass(frozen=True)
class Consensus:
    """Abstract / Figures 6-8: Algorithm 1 with three members on 1,000 MNIST images."""

    accuracy: float = 0.95  # "95% accuracy"
    coverage: float = 0.90  # "with 90% of the test samples classified"
    members: int = 3
    min_threshold: float = 0.1  # Section IV.B: rejected "for any value p_t >= 0.1"
    dropout_rates: tuple[float, ...] = (0.25, 0.50, 0.75)  # Figure 8
    saved_models: int = 20  # Section V.A: "We get twenty trained and saved models" (epochs)


DATA = DataSetting()
NETWORK = SectionIINetwork()
SOFTMAX = SoftmaxExample()
FIGURE1 = Figure1()
CONSENSUS = Consensus()
