"""Points of extreme overfitting (Algorithm 1, Section 3, Section 4.3): the paper's settings.

The paper prints no accuracies in tables; its numbers are the experimental setting (Section
4.3) and the qualitative targets of Section 3 ("almost zero error on the training set and
almost 100% of errors on the test sample"), written here once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """Section 4.3: Adam, constant step 1e-3, batch 128, Xavier-uniform init, R runs each on
    the clean and on Algorithm 1's corrupted set, for every model and dataset."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    init: str = "xavier_uniform"
    runs: int = 200
    models: tuple[str, ...] = ("eo_mlp", "eo_cnn", "eo_resnet")
    datasets: tuple[str, ...] = ("mnist", "fashion_mnist", "cifar10")
    mnist_repeats: int = 7  # Algorithm 1: t = floor(60,000 / 10,000) + 1


SETTING = Setting()
# Section 3: at an extreme point the clean training accuracy is ~100% and the test accuracy ~0%.
EXTREME_TRAIN_ACC = 1.0
EXTREME_TEST_ACC = 0.0
PAIRS: tuple[tuple[str, str], ...] = tuple((m, d) for d in SETTING.datasets
                                           for m in SETTING.models)
