"""The training engine: configuration, fit() / fit_many(), results and the run cache."""

from genbench.training.config import Augment, TrainConfig
from genbench.training.engine import NonFiniteLossError, evaluate, fit, fit_many
from genbench.training.result import RunResult

__all__ = ["Augment", "TrainConfig", "NonFiniteLossError", "RunResult", "evaluate", "fit",
           "fit_many"]
