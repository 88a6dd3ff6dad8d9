"""'Overfitting mechanism and consensus-based classification', Section II and V-B.

``c_cnn`` is the paper's Section II network (Keras style). The paper's consensus uses 'three
models having different architectures' without describing the other two, so ``c_mlp`` and
``c_lenet`` are two clearly different shapes (fully connected; LeNet-like) with the same
two dropout options. All run on MNIST (1x28x28) and USPS (1x16x16).
"""

from __future__ import annotations

from torch import nn

from genbench.models.layers import check_probability, flat_size, mlp, output_shape
from genbench.models.spec import ModelSpec, Shape

_INPUTS: tuple[Shape, ...] = ((1, 28, 28), (1, 16, 16))


def _with_head(
    features: nn.Sequential, in_shape: Shape, hidden: list[int], num_classes: int,
    dropout1: float, dropout2: float,
) -> nn.Module:  # fmt: skip
    """features -> flatten -> dropout1 -> [FC -> ReLU] per hidden width -> dropout2 -> FC out."""
    features.append(nn.Flatten())
    (width,) = output_shape(features, in_shape)
    head = mlp(width, hidden, num_classes)[1:]  # drop mlp's own Flatten
    return nn.Sequential(
        *features, nn.Dropout(dropout1), *head[:-1], nn.Dropout(dropout2), head[-1]
    )


def c_cnn(
    in_shape: Shape, num_classes: int, *, dropout1: float = 0.25, dropout2: float = 0.5
) -> nn.Module:
    """conv3x3/32 (no padding) -> max-pool 2 -> ReLU -> dropout1 -> FC 128 -> ReLU -> dropout2
    -> FC out: the Keras MNIST example the paper describes."""
    features = nn.Sequential(nn.Conv2d(in_shape[0], 32, 3), nn.MaxPool2d(2), nn.ReLU())
    return _with_head(
        features, in_shape, [128], num_classes,
        check_probability("dropout1", dropout1), check_probability("dropout2", dropout2),
    )  # fmt: skip


def c_mlp(
    in_shape: Shape, num_classes: int, *, dropout1: float = 0.25, dropout2: float = 0.5
) -> nn.Module:
    """flatten -> 256 ReLU -> dropout1 -> 128 ReLU -> dropout2 -> FC out."""
    rates = (check_probability("dropout1", dropout1), check_probability("dropout2", dropout2))
    return mlp(flat_size(in_shape), [256, 128], num_classes, dropout=rates)


def c_lenet(
    in_shape: Shape, num_classes: int, *, dropout1: float = 0.25, dropout2: float = 0.5
) -> nn.Module:
    """LeNet-5-like: conv5x5/6 -> ReLU -> max-pool 2 -> conv5x5/16 -> ReLU -> max-pool 2
    (both convs padded by 2, so 16x16 inputs fit) -> dropout1 -> FC 120 -> ReLU -> FC 84 ->
    ReLU -> dropout2 -> FC out."""
    features = nn.Sequential(
        nn.Conv2d(in_shape[0], 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    )  # fmt: skip
    return _with_head(
        features, in_shape, [120, 84], num_classes,
        check_probability("dropout1", dropout1), check_probability("dropout2", dropout2),
    )  # fmt: skip


_PAPER = "consensus"
SPECS = tuple(ModelSpec(b.__name__, b, _PAPER, _INPUTS) for b in (c_cnn, c_mlp, c_lenet))
