"""Analyses: pure functions of tensors and nn.Modules that turn trained models into the
quantities the papers' claims are about. None of them trains a model.

- ``consensus``: Algorithm 1 of the consensus paper (and its k-of-n extension), accuracy on
  classified samples, coverage, threshold sweeps (Figures 6-8).
- ``dynamics``: per-sample losses, their split into correct/wrong, logit norm, overlap, trend
  (consensus paper, Sections III and V.A).
- ``paths``: linear interpolation between two networks (consensus paper, Section II).
- ``weights``: distance from initialization, weight norm, full-batch gradient norm
  (extreme-overfitting paper, Section 3).
- ``rademacher``: empirical Rademacher complexity by randomization (Zhang et al., Section 2.2).
"""

from genbench.analysis.consensus import (
    REJECT,
    ThresholdSweep,
    check_probs,
    classified_accuracy,
    consensus,
    consensus_scores,
    coverage,
    threshold_sweep,
)
from genbench.analysis.dynamics import (
    LossSplit,
    logit_norm,
    loss_auroc,
    loss_overlap,
    loss_split,
    per_sample_loss,
    split_losses,
    trend,
)
from genbench.analysis.paths import InterpolationPath, good_range, interpolate_state, interpolation_path
from genbench.analysis.rademacher import empirical_rademacher, rademacher_labels, signed_prediction
from genbench.analysis.weights import (
    distance_from_init,
    distance_from_init_stacked,
    flat_params,
    gradient_norm,
    trainable_state,
    weight_norm,
    weight_norm_stacked,
)

__all__ = [
    "REJECT",
    "InterpolationPath",
    "LossSplit",
    "ThresholdSweep",
    "check_probs",
    "classified_accuracy",
    "consensus",
    "consensus_scores",
    "coverage",
    "distance_from_init",
    "distance_from_init_stacked",
    "empirical_rademacher",
    "flat_params",
    "good_range",
    "gradient_norm",
    "interpolate_state",
    "interpolation_path",
    "logit_norm",
    "loss_auroc",
    "loss_overlap",
    "loss_split",
    "per_sample_loss",
    "rademacher_labels",
    "signed_prediction",
    "split_losses",
    "threshold_sweep",
    "trainable_state",
    "trend",
    "weight_norm",
    "weight_norm_stacked",
]
