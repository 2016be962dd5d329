"""Training: compile, fit with early stopping and gradient clipping, survive Ctrl-C."""

import logging
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from .errors import ConfigError
from .models.builders import check_builder_settings

log = logging.getLogger(__name__)
CLASS_WEIGHTS = ("balanced", "none")


@dataclass
class TrainingResult:
    """What happened during :func:`train`."""

    history: dict
    epochs_run: int
    best_epoch: int
    stopped_by: str  # "early_stopping", "epochs" or "interrupted"
    seconds: float


@dataclass
class FitSettings:
    """Model and training settings of a run; the defaults are the CLI's defaults."""

    arch: str = "bigru"
    units: tuple = (64,)
    dropout: float = 0.5
    recurrent_dropout: float = 0.0
    pooling: str = "last"
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    clipnorm: float = 1.0
    class_weight: str = "balanced"
    patience: int = 3
    label_smoothing: float = 0.1
    val_size: float = 0.1
    test_size: float = 0.1
    seed: int = 0

    def __post_init__(self):
        self.units = check_builder_settings(self.arch, self.units, self.dropout, self.recurrent_dropout, self.pooling)
        check_training_settings(self.epochs, self.batch_size, self.learning_rate, self.clipnorm, self.class_weight,
                                self.patience, self.label_smoothing)
        for name in ("val_size", "test_size"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"The '{name}' parameter must be in (0, 1). Got {getattr(self, name)!r} instead.")
        if self.val_size + self.test_size >= 1.0:
            raise ConfigError("val_size + test_size must leave some data for training (their sum is >= 1)")


def seed_everything(seed):
    """Make a run repeatable: seed Python, NumPy and TensorFlow, and use deterministic ops."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def class_weights(y, n_classes, mode):
    """``{class index: weight}`` for ``mode="balanced"``, ``None`` for ``"none"``."""
    if mode == "none":
        return None
    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)} | {
        c: 1.0 for c in range(n_classes) if c not in present
    }


def check_training_settings(epochs, batch_size, learning_rate, clipnorm, class_weight, patience, label_smoothing=0.0):
    """Raise :class:`ConfigError` for a training setting that cannot work."""
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("patience", patience, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ConfigError(f"The '{name}' parameter must be an integer >= {low}. Got {value!r} instead.")
    if not learning_rate > 0:
        raise ConfigError(f"The 'learning_rate' parameter must be > 0. Got {learning_rate!r} instead.")
    if clipnorm is not None and not clipnorm > 0:
        raise ConfigError(f"The 'clipnorm' parameter must be > 0. Got {clipnorm!r} instead.")
    if class_weight not in CLASS_WEIGHTS:
        raise ConfigError(f"The 'class_weight' parameter must be one of {', '.join(CLASS_WEIGHTS)}. Got {class_weight!r} instead.")
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"The 'label_smoothing' parameter must be in [0, 1). Got {label_smoothing!r} instead.")


def train(model, x_train, y_train, x_val, y_val, *, epochs=20, batch_size=64, learning_rate=1e-3, clipnorm=1.0,
          class_weight="balanced", patience=3, label_smoothing=0.0, verbose=1):
    """Compile and fit ``model``; keep the weights of the epoch with the lowest validation loss.

    The loss is cross-entropy with ``label_smoothing`` (targets ``1 - s + s/k`` and ``s/k``):
    it keeps the model from growing over-confident, so the validation loss keeps tracking
    accuracy for longer and early stopping does not stop at the first epoch.

    Ctrl-C stops training early and still restores the best weights seen so far.

    Examples
    --------
    >>> result = train(model, x, y, x_val, y_val, epochs=1)  # doctest: +SKIP
    >>> result.stopped_by  # doctest: +SKIP
    'epochs'
    """
    check_training_settings(epochs, batch_size, learning_rate, clipnorm, class_weight, patience, label_smoothing)
    n_classes = model.output_shape[-1]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )
    y_train, y_val = (keras.utils.to_categorical(y, n_classes) for y in (y_train, y_val))
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    history = keras.callbacks.History()
    weights = class_weights(y_train.argmax(axis=1), n_classes, class_weight)
    started = time.perf_counter()
    stopped_by = "epochs"
    try:
        model.fit(
            x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
            class_weight=weights, callbacks=[stopper, history], verbose=verbose,
        )
        if stopper.stopped_epoch > 0:
            stopped_by = "early_stopping"
    except KeyboardInterrupt:
        stopped_by = "interrupted"
        log.warning("interrupted: keeping the best weights so far")
        if stopper.best_weights is not None:
            model.set_weights(stopper.best_weights)
    seconds = time.perf_counter() - started
    losses = history.history.get("val_loss", [])
    if not losses:
        raise KeyboardInterrupt("training was interrupted before the first epoch ended")
    return TrainingResult(
        history=history.history,
        epochs_run=len(losses),
        best_epoch=int(np.argmin(losses)) + 1,
        stopped_by=stopped_by,
        seconds=seconds,
    )
