"""Zhang et al., Table 2: Inception V3 on ImageNet (299x299x3), torchvision's implementation."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import inception_v3 as tv_inception_v3

from genbench.models.layers import output_shape
from genbench.models.spec import ModelSpec, Shape

IMAGENET: Shape = (3, 299, 299)


def _torchvision_inception_v3(num_classes: int, dropout: float = 0.5) -> nn.Module:
    return tv_inception_v3(
        weights=None, aux_logits=False, init_weights=True, num_classes=num_classes,
        dropout=dropout,
    )


def inception_v3(in_shape: Shape, num_classes: int, *, dropout: float = 0.5) -> nn.Module:
    """torchvision's Inception V3, untrained, without the auxiliary head (so ``forward``
    returns plain logits), with torchvision's own truncated-normal initialisation.

    It needs 3 channels and at least 75x75 inputs. The input check runs on a copy built on
    the meta device first, so a bad ``in_shape`` fails before the costly initialisation of
    its 22-24M weights. ``dropout``: the rate before the classifier (torchvision's default
    0.5; Zhang et al.'s Table 2 rows without regularization use 0).
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"inception_v3: dropout must be in [0, 1), got {dropout!r}")
    with torch.device("meta"):
        output_shape(_torchvision_inception_v3(num_classes, dropout), in_shape)
    return _torchvision_inception_v3(num_classes, dropout)


SPECS = (ModelSpec("inception_v3", inception_v3, "zhang2017", (IMAGENET,)),)
