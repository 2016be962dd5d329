"""Settings of a fit: the model and training parameters of :mod:`seqclf.params`, checked; what "auto" means."""

from dataclasses import field, make_dataclass

import numpy as np

from .. import distribute, tasks
from ..errors import ConfigError
from ..models.builders import check_builder_settings
from ..params import PARAMS, SETTINGS

CLASS_WEIGHTS = PARAMS["class_weight"].choices
#: What ``auto`` means for class weights and label smoothing unless the kind or the task says otherwise.
AUTO_TRAINING = {"class_weight": "balanced", "label_smoothing": 0.1, "learning_rate": 1e-3, "lr_schedule": "auto"}
LR_SCHEDULES = PARAMS["lr_schedule"].choices
MIN_UPDATES = 600
MAX_AUTO_EPOCHS = 200


def _check(settings):
    """Raise :class:`ConfigError` for settings that cannot work; the units of an arch spec win over ``units``."""
    task = tasks.get_task(settings.task)
    settings.units = check_builder_settings(settings.arch or task.default_arch, settings.units, settings.dropout,
                                            settings.recurrent_dropout, settings.pooling, task)
    check_training_settings(settings.epochs, settings.batch_size, settings.learning_rate, settings.clipnorm,
                            settings.class_weight, settings.patience, settings.label_smoothing, settings.clipvalue,
                            settings.lr_schedule)
    for name in ("val_size", "test_size"):
        if not 0.0 < getattr(settings, name) < 1.0:
            raise ConfigError(f"The '{name}' parameter must be in (0, 1). Got {getattr(settings, name)!r} instead.")
    if settings.strategy not in distribute.STRATEGIES:
        raise ConfigError(f"The 'strategy' parameter must be one of {', '.join(distribute.STRATEGIES)}. "
                          f"Got {settings.strategy!r} instead.")
    if settings.val_size + settings.test_size >= 1.0:
        raise ConfigError("val_size + test_size must leave some data for training (their sum is >= 1)")


FitSettings = make_dataclass(
    "FitSettings", [(name, object, field(default=PARAMS[name].default)) for name in SETTINGS],
    namespace={"__post_init__": _check, "__module__": __name__,
               "__doc__": "Model and training settings of a run: the ``model`` and ``training`` parameters of "
                          ":data:`seqclf.params.PARAMS`, with their defaults (``arch=None``: the task's)."})


def class_weights(y, n_classes, mode):
    """``{class index: weight}`` for ``mode="balanced"``, ``None`` for ``"none"``."""
    return class_weights_from_counts(np.bincount(np.asarray(y, dtype="int64"), minlength=n_classes), mode)


def class_weights_from_counts(counts, mode):
    """Balanced weights from the number of examples of each class: scikit-learn's ``n / (classes present * count)``,
    1 for a class without examples; ``None`` for ``mode="none"``."""
    if mode not in ("balanced", "none"):
        raise ConfigError(f"class weights {mode!r} must be resolved to 'balanced' or 'none' before training")
    if mode == "none":
        return None
    counts = np.asarray(counts, dtype="float64")
    present = counts > 0
    return {c: float(counts.sum() / (present.sum() * n)) if n > 0 else 1.0 for c, n in enumerate(counts)}


def training_budget(n_train, epochs=None, batch_size=None, patience=None):
    """Epochs, batch size and patience, with ``None`` ("auto") resolved for ``n_train`` examples.

    Auto: batches of ``n_train // 8`` between 8 and 64; at least 20 epochs and at least
    ``MIN_UPDATES`` weight updates, at most ``MAX_AUTO_EPOCHS`` epochs; patience a sixth of the
    epochs, at least 3. On large data that is 64, 20 and 3; a set of 50 series gets batches of 8
    and 100 epochs, which it needs to learn at all. When the epochs were raised above 20 like
    that, early stopping does not stop during the first half of them (``warmup``; it still
    keeps their best epoch): a small model on a few series learns slowly at first, and a
    validation split of a handful of series would otherwise stop it before it starts.

    Examples
    --------
    >>> training_budget(8000)
    {'epochs': 20, 'batch_size': 64, 'patience': 3, 'warmup': 0}
    >>> training_budget(45)
    {'epochs': 100, 'batch_size': 8, 'patience': 17, 'warmup': 50}
    """
    batch_size = batch_size or int(min(64, max(8, n_train // 8)))
    updates_per_epoch = max(1, -(-n_train // batch_size))
    needed = -(-MIN_UPDATES // updates_per_epoch)
    warmup = 0
    if epochs is None:
        epochs = int(min(MAX_AUTO_EPOCHS, max(20, needed)))
        warmup = epochs // 2 if epochs > 20 else 0
    patience = patience if patience is not None else max(3, round(epochs / 6))
    return {"epochs": epochs, "batch_size": batch_size, "patience": patience, "warmup": warmup}


def check_training_settings(epochs, batch_size, learning_rate, clipnorm, class_weight, patience, label_smoothing=0.0,
                            clipvalue=None, lr_schedule="auto"):
    """Raise :class:`ConfigError` for a training setting that cannot work (``None``: auto, see :func:`training_budget`)."""
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("patience", patience, 0)):
        if value is None:
            continue
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ConfigError(f"The '{name}' parameter must be an integer >= {low}. Got {value!r} instead.")
    if learning_rate is not None and not learning_rate > 0:
        raise ConfigError(f"The 'learning_rate' parameter must be > 0. Got {learning_rate!r} instead.")
    for name, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
        if value is not None and not value > 0:
            raise ConfigError(f"The '{name}' parameter must be > 0. Got {value!r} instead.")
    if class_weight not in CLASS_WEIGHTS:
        raise ConfigError(f"The 'class_weight' parameter must be one of {', '.join(CLASS_WEIGHTS)}. Got {class_weight!r} instead.")
    if label_smoothing is not None and not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"The 'label_smoothing' parameter must be in [0, 1). Got {label_smoothing!r} instead.")
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"The 'lr_schedule' parameter must be one of {', '.join(LR_SCHEDULES)}. Got {lr_schedule!r} "
                          f"instead.")


