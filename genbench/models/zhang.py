"""Zhang et al. (ICLR 2017), Appendix A and Figure 3: the CIFAR-10 models of Table 1.

All take 28x28x3 inputs (CIFAR-10 centre-cropped) in the paper; for those inputs their
parameter counts equal Table 1 exactly (1,209,866 / 1,735,178 / 1,387,786 / 1,649,402 /
1,649,402), which pins down the details the text leaves open.
"""

from __future__ import annotations

import torch
from torch import nn

from genbench.models.layers import ChannelOffset, flat_size, mlp, output_shape
from genbench.models.spec import ModelSpec, Shape

CIFAR_CROP: Shape = (3, 28, 28)


def mlp_1x512(in_shape: Shape, num_classes: int) -> nn.Module:
    """MLP 1x512: one hidden layer of 512 ReLU units."""
    return mlp(flat_size(in_shape), [512], num_classes)


def mlp_3x512(in_shape: Shape, num_classes: int) -> nn.Module:
    """MLP 3x512: three hidden layers of 512 ReLU units."""
    return mlp(flat_size(in_shape), [512, 512, 512], num_classes)


def _alexnet_module(in_channels: int) -> list[nn.Module]:
    """conv 5x5/64 -> ReLU -> max-pool 3x3 stride 2 -> local response norm.

    Details from TensorFlow's CIFAR-10 tutorial network that Zhang's small AlexNet adapts:
    'SAME' convolutions (padding 2) and pools (padding 1, so 28 -> 14 -> 7: the 7x7x64 map
    that Table 1's count requires), and ``tf.nn.lrn(depth_radius=4, bias=1, alpha=0.001/9,
    beta=0.75)``, which is PyTorch's LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1)
    because PyTorch divides alpha by the window size.
    """
    return [
        nn.Conv2d(in_channels, 64, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        nn.LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0),
    ]


def alexnet_small(in_shape: Shape, num_classes: int) -> nn.Module:
    """Small AlexNet: two [conv 5x5 -> max-pool 3x3 -> LRN] modules, FC 384, FC 192, linear.

    The FC 384 input width is read from the feature map for ``in_shape`` (7x7x64 at 28x28).
    """
    features = nn.Sequential(*_alexnet_module(in_shape[0]), *_alexnet_module(64), nn.Flatten())
    (width,) = output_shape(features, in_shape)
    return nn.Sequential(*features, *mlp(width, [384, 192], num_classes)[1:])


class ConvModule(nn.Sequential):
    """Figure 3's conv module: convolution -> batch norm -> ReLU.

    Every convolution carries exactly one bias-like vector of its output width, as in
    TensorFlow's defaults: with ``batchnorm`` it is conv (no bias) -> BatchNorm2d without
    scale -> learnable offset; without it, a plain conv bias. That is why Table 1 lists the
    same count for Inception with and without BatchNorm. 'SAME' padding (k // 2) keeps the
    map size at stride 1 and halves it at stride 2 (28 -> 14 -> 7, Figure 3's 7x7 mean pool).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, batchnorm: bool) -> None:
        conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=not batchnorm)
        norm = [nn.BatchNorm2d(cout, affine=False), ChannelOffset(cout)] if batchnorm else []
        super().__init__(conv, *norm, nn.ReLU())


class Concat(nn.Module):
    """Runs branches on the same input and concatenates their outputs along channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def _inception(cin: int, ch1: int, ch3: int, batchnorm: bool) -> tuple[nn.Module, int]:
    """Inception module: a 1x1 and a 3x3 conv module side by side; returns it and its width."""
    module = Concat(ConvModule(cin, ch1, 1, 1, batchnorm), ConvModule(cin, ch3, 3, 1, batchnorm))
    return module, ch1 + ch3


def _downsample(cin: int, ch3: int, batchnorm: bool) -> tuple[nn.Module, int]:
    """Downsample module: a 3x3 stride-2 conv module beside a 3x3 stride-2 max-pool."""
    pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return Concat(ConvModule(cin, ch3, 3, 2, batchnorm), pool), cin + ch3


# Figure 3, top to bottom: ("inception", ch1, ch3) or ("downsample", ch3).
_SMALL_INCEPTION = (
    ("inception", 32, 32),
    ("inception", 32, 48),
    ("downsample", 80),
    ("inception", 112, 48),
    ("inception", 96, 64),
    ("inception", 80, 80),
    ("inception", 48, 96),
    ("downsample", 96),
    ("inception", 176, 160),
    ("inception", 176, 160),
)


def _small_inception(in_shape: Shape, num_classes: int, batchnorm: bool) -> nn.Module:
    """Figure 3: conv 3x3/96, the inception/downsample stack, global mean pool, linear."""
    layers: list[nn.Module] = [ConvModule(in_shape[0], 96, 3, 1, batchnorm)]
    width = 96
    for kind, *channels in _SMALL_INCEPTION:
        make = _inception if kind == "inception" else _downsample
        module, width = make(width, *channels, batchnorm)
        layers.append(module)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)]
    model = nn.Sequential(*layers)
    output_shape(model, in_shape)  # a too-small input fails here, not at the first batch
    return model


def inception_small(in_shape: Shape, num_classes: int) -> nn.Module:
    """Small Inception with batch norm (TensorFlow style: offset only, no scale)."""
    return _small_inception(in_shape, num_classes, batchnorm=True)


def inception_small_nobn(in_shape: Shape, num_classes: int) -> nn.Module:
    """Small Inception without batch norm: the same network, each conv with its bias."""
    return _small_inception(in_shape, num_classes, batchnorm=False)


_PAPER = "zhang2017"
SPECS = tuple(
    ModelSpec(builder.__name__, builder, _PAPER, (CIFAR_CROP,))
    for builder in (mlp_1x512, mlp_3x512, alexnet_small, inception_small, inception_small_nobn)
)
