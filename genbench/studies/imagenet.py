"""Zhang et al. (2017), Table 2: Inception V3 on ImageNet, true and random labels.

The paper trained TensorFlow's Inception V3 with asynchronous SGD over 50 workers. genbench
trains torchvision's Inception V3 synchronously with DistributedDataParallel under torchrun;
the optimizer is SGD with momentum (the engine's; TF's default was RMSProp), with the
learning rate scaled linearly with the global batch and TF's decay of 0.94 every two epochs
expressed per epoch (0.94 ** 0.5). Data augmentation, dropout and weight decay are off for
the rows this claim checks ("no regularization"): torchvision's Inception V3 has dropout 0.5
before its classifier, so the model is built with ``dropout=0.0`` (``ImageNetSettings.dropout``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from genbench import models
from genbench.data.imagenet import load_imagenet
from genbench.training import RunResult, TrainConfig, fit


@dataclass(frozen=True)
class ImageNetSettings:
    """One Table 2 run: ``epochs`` over the training split at ``image_size`` pixels with a
    global batch of ``batch_size`` images (split over the ranks)."""

    epochs: int = 90
    batch_size: int = 256
    image_size: int = 299
    workers: int = 8
    seed: int = 0
    dropout: float = 0.0  # "no regularization": torchvision's default would be 0.5
    weight_decay: float = 0.0
    optimizer_note: str = ("SGD momentum 0.9, synchronous (the paper: TensorFlow's RMSProp, "
                           "asynchronous over 50 workers)")

    def config(self) -> TrainConfig:
        return TrainConfig(optimizer="sgd", lr=0.1 * self.batch_size / 256, momentum=0.9,
                           lr_decay=math.sqrt(0.94), batch_size=self.batch_size,
                           weight_decay=self.weight_decay,
                           max_epochs=self.epochs, seed=self.seed, eval_every=self.epochs)


def table2_row(settings: ImageNetSettings, random_labels: bool,
               root: str | os.PathLike[str] | None = None,
               device: torch.device | str | None = None) -> RunResult:
    """Train Inception V3 on ImageNet with true or random labels (drawn once from the seed);
    the result holds top-1 train accuracy (``final['train_acc']``, against the labels it was
    trained on) and top-1 validation accuracy (``final['test_acc']``)."""
    train = load_imagenet("train", root, image_size=settings.image_size, workers=settings.workers,
                          random_labels_seed=settings.seed if random_labels else None)
    val = load_imagenet("val", root, image_size=settings.image_size, workers=settings.workers)
    model = models.build("inception_v3", train.in_shape, train.num_classes, seed=settings.seed,
                         dropout=settings.dropout)
    return fit(model, train, settings.config(), val, device=device, name="inception_v3")
