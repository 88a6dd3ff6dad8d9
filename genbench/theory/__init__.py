"""Zhang et al. (2017)'s theory and linear-model results as library functions.

- :mod:`.construction`: Theorem 1's two-layer network, Lemma 1's matrix, Corollary 1's depth-k net.
- :mod:`.linear`: minimum-norm interpolation, GD/SGD from zero, the least-squares Hessian.
- :mod:`.kernels`: Gaussian-kernel interpolation (Table 3), memory-checked and chunked.
- :mod:`.features`: Gabor wavelets (MNIST) and random Coates-Ng conv features (CIFAR-10).
"""

from genbench.theory.construction import (
    DepthKNetwork,
    LayerCounts,
    Theorem1Network,
    depth_k_network,
    interleave,
    interpolation_residuals,
    interpolation_tolerance,
    layer_counts,
    lemma1_matrix,
    theorem1_network,
)
from genbench.theory.features import GaborBank, RandomConvNet, fit_random_conv, gabor_features, random_conv_features
from genbench.theory.kernels import (
    KERNEL_DTYPES,
    KernelModel,
    KernelPrecision,
    KernelSolveError,
    MemoryBudgetError,
    check_memory,
    gaussian_kernel,
    kernel_interpolate,
    kernel_norm,
    median_bandwidth,
)
from genbench.theory.linear import (
    GDResult,
    gd_least_squares,
    global_minima,
    least_squares_hessian,
    least_squares_loss,
    logcosh_loss,
    loss_hessian,
    min_norm_solution,
    non_minima,
)

__all__ = [
    "KERNEL_DTYPES",
    "DepthKNetwork",
    "GDResult",
    "GaborBank",
    "KernelModel",
    "KernelPrecision",
    "KernelSolveError",
    "LayerCounts",
    "MemoryBudgetError",
    "RandomConvNet",
    "Theorem1Network",
    "check_memory",
    "depth_k_network",
    "fit_random_conv",
    "gabor_features",
    "gaussian_kernel",
    "gd_least_squares",
    "global_minima",
    "interleave",
    "interpolation_residuals",
    "interpolation_tolerance",
    "kernel_interpolate",
    "kernel_norm",
    "least_squares_hessian",
    "least_squares_loss",
    "layer_counts",
    "lemma1_matrix",
    "logcosh_loss",
    "loss_hessian",
    "median_bandwidth",
    "min_norm_solution",
    "non_minima",
    "random_conv_features",
    "theorem1_network",
]
