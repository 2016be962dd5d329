"""Training: settings, batches, callbacks and the fit loop (``train``), on one machine or several (``distribute``)."""

from .backup import EpochBackup, TrainingState
from .batching import LengthBuckets, StreamBuckets, Streamed
from .callbacks import CtrlC, NonFiniteLossGuard, StepAccuracy, WarmUpEarlyStopping
from .loop import TrainingResult, seed_everything, train
from .settings import (AUTO_TRAINING, FitSettings, check_training_settings, class_weights, class_weights_from_counts,
                       training_budget)

__all__ = ["AUTO_TRAINING", "CtrlC", "EpochBackup", "FitSettings", "LengthBuckets", "NonFiniteLossGuard", "StepAccuracy", "StreamBuckets",
           "Streamed", "TrainingResult", "TrainingState", "WarmUpEarlyStopping", "check_training_settings", "class_weights",
           "class_weights_from_counts", "seed_everything", "train", "training_budget"]
