"""The training engine: configuration, runtime, fit() / fit_many(), results and the run cache."""

from genbench.training.config import Augment, TrainConfig, lr_at
from genbench.training.engine import (Evaluation, ModelEvaluation, NonFiniteLossError, evaluate, fit,
                                     fit_many)
from genbench.training.result import RunResult
from genbench.training.runtime import Runtime

__all__ = ["Augment", "TrainConfig", "Evaluation", "ModelEvaluation", "NonFiniteLossError",
           "RunResult", "Runtime", "evaluate", "fit", "fit_many", "lr_at"]
