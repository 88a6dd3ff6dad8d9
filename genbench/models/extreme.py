"""'Points of extreme overfitting', Section 4.1: the MLP, LeNet-like CNN and small ResNet.

The paper trains them on MNIST / Fashion-MNIST (1x28x28) and CIFAR-10 (3x32x32), with
Xavier-uniform initialisation (``build(..., init="xavier_uniform")``).
"""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock

from genbench.models.layers import check_positive_int, flat_size, mlp, output_shape
from genbench.models.spec import ModelSpec, Shape

_INPUTS: tuple[Shape, ...] = ((1, 28, 28), (3, 32, 32))


def eo_mlp(in_shape: Shape, num_classes: int) -> nn.Module:
    """Input -> 512 ReLU -> num_classes."""
    return mlp(flat_size(in_shape), [512], num_classes)


def eo_cnn(in_shape: Shape, num_classes: int) -> nn.Module:
    """conv5x5/16 -> max-pool 2 -> conv5x5/32 -> max-pool 2 -> conv5x5/64 -> FC 84 -> FC out.

    ReLU follows every layer but the last. The paper does not give the padding; 'same'
    padding (2) is used so the network runs on both 28x28 and 32x32 inputs (without it a
    28x28 input shrinks to nothing), and the FC 84 input width is read from ``in_shape``.
    """
    features = nn.Sequential(
        nn.Conv2d(in_shape[0], 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(),
        nn.Flatten(),
    )  # fmt: skip
    (width,) = output_shape(features, in_shape)
    return nn.Sequential(*features, *mlp(width, [84], num_classes)[1:])


def _stage(cin: int, cout: int, stride: int, blocks: int) -> list[nn.Module]:
    """``blocks`` BasicBlocks; the first changes width/stride through a 1x1 conv + BN shortcut."""
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
        )
    first = BasicBlock(cin, cout, stride=stride, downsample=shortcut)
    return [first, *(BasicBlock(cout, cout) for _ in range(blocks - 1))]


def eo_resnet(in_shape: Shape, num_classes: int, *, blocks: int = 2) -> nn.Module:
    """He et al.'s CIFAR ResNet (3x3/16 stem, stages of 16/32/64 channels at strides 1/2/2,
    ``blocks`` BasicBlocks each), global average pool, a fully connected 64-unit ReLU
    penultimate layer and a linear output.

    The paper only says 'the classical architecture of [6] with 64 neurons in the penultimate
    fully connected layer', adapted to 1-channel inputs: the stem reads ``in_shape[0]``
    channels, and the 64-unit layer is an explicit FC layer. It keeps the classic BatchNorm
    (so the model has running-statistics buffers) and torchvision's BasicBlock; shortcuts
    that change shape are 1x1 conv + BN (He's option B). ``blocks=2`` gives a ResNet-14.
    """
    check_positive_int("blocks", blocks)
    model = nn.Sequential(
        nn.Conv2d(in_shape[0], 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        *_stage(16, 16, 1, blocks), *_stage(16, 32, 2, blocks), *_stage(32, 64, 2, blocks),
        nn.AdaptiveAvgPool2d(1),
        *mlp(64, [64], num_classes),
    )  # fmt: skip
    output_shape(model, in_shape)
    return model


_PAPER = "extreme_overfitting"
SPECS = tuple(ModelSpec(b.__name__, b, _PAPER, _INPUTS) for b in (eo_mlp, eo_cnn, eo_resnet))
