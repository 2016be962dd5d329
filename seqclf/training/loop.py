"""The fit itself: compile, fit with early stopping and gradient clipping, survive Ctrl-C."""

import logging
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .. import distribute
from ..errors import ConfigError, TrainingError
from ..models.crf import CRFLoss, crf_layer
from ..optimizers import LazyAdam
from .backup import EpochBackup, TrainingState
from .batching import LengthBuckets, StreamBuckets, Streamed, one_hot, token_ids
from .callbacks import CtrlC, GradientNorms, NonFiniteLossGuard, StepAccuracy, WarmUpEarlyStopping
from .settings import check_training_settings, class_weights, class_weights_from_counts, training_budget

log = logging.getLogger("seqclf.training")
#: A validation split with fewer labels than this does not choose the epoch (unless ``patience`` is given): 4-7 UCR
#: series chose epochs 12-140 by luck; the annealed last epoch scored as well (84.6% against 85.1 on three sets,
#: within the seeds' spread; ``benchmarks/timeseries_accuracy.py`` with and without ``--set patience=1000``).
MIN_VALIDATION = 30


@dataclass
class TrainingResult:
    """What happened during :func:`train`."""

    history: dict
    epochs_run: int
    best_epoch: int
    stopped_by: str  # "early_stopping", "epochs" or "interrupted"
    seconds: float
    budget: dict  # epochs, batch size, patience and warm-up as used (``None`` settings resolved)


def seed_everything(seed):
    """Make a run repeatable: seed Python, NumPy and TensorFlow, and use deterministic ops."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def train(model, x_train, y_train, x_val, y_val, *, epochs=None, batch_size=None, learning_rate=1e-3,
          lr_schedule="auto", clipnorm=1.0, clipvalue=None, class_weight="balanced", patience=None, label_smoothing=0.0,
          verbose=1, backup_dir=None, strategy=None, per_step=False, own_lengths=(), log_dir=None):
    """Compile and fit ``model``; keep the weights of the epoch with the lowest validation loss, or, on a validation
    split too small to tell epochs apart (or with ``lr_schedule="cosine"``), of the last epoch of a learning rate
    annealed to 0.

    ``y_train`` and ``y_val`` hold class indices: ``(n_samples,)`` for one label per sequence,
    or, with ``per_step`` (the task labels every step), ``(n_samples, n_timesteps)``, with -1 on padded steps (left out of the
    loss and the metrics; class weights become per-step sample weights). The inputs numbered in ``own_lengths``
    are token ids of another length than the targets (a translation's source), batched at their own length.

    The loss is cross-entropy with ``label_smoothing`` (targets ``1 - s + s/k`` and ``s/k``):
    it keeps the model from growing over-confident, so the validation loss keeps tracking
    accuracy for longer and early stopping does not stop at the first epoch. A model ending in a
    CRF (:class:`~seqclf.models.crf.CRF`) is trained on the negative log-likelihood of its tag
    sequences instead (:class:`~seqclf.models.crf.CRFLoss`); its accuracy during training is that of
    the potentials alone.

    Gradients are clipped, because backpropagation through time multiplies by the recurrent
    weights once per step and can blow up on long sequences (exploding gradients): by default
    all gradients together are scaled down when their global norm exceeds ``clipnorm``, which
    keeps their direction; ``clipvalue`` instead clips each component to [-clipvalue, clipvalue]
    (and replaces ``clipnorm``). The optimizer is Adam, lazy on embeddings
    (:class:`~seqclf.optimizers.LazyAdam`: a batch updates only the rows of its own words). The history
    records per epoch the median and largest global gradient norm before clipping and the share of
    steps clipping changed (:class:`~seqclf.training.callbacks.GradientNorms`).

    Early stopping waits ``patience`` epochs without a lower validation loss, never stops during
    the budget's warm-up (:func:`~seqclf.training.settings.training_budget`), and keeps the best
    epoch of all, the warm-up's included. With fewer than :data:`MIN_VALIDATION` labels in the
    validation split (a few series) and ``patience`` left to auto, its loss is noise: training
    runs every epoch instead, the learning rate follows a cosine from ``learning_rate`` down to 0
    (Keras' ``CosineDecay``), and the last epoch is kept. ``lr_schedule`` chooses instead: ``"constant"``,
    ``"plateau"`` (Keras' ``ReduceLROnPlateau``: the rate is halved after each epoch whose validation loss is not
    the lowest yet; the best epoch is kept) or ``"cosine"`` (the annealing above, whatever the validation's size).

    With ``log_dir``, Keras' TensorBoard callback writes the epoch's scalars there (loss, accuracy, learning rate,
    the gradient norms; training under ``train/``, validation under ``validation/``).

    Ctrl-C stops training early and still restores the best weights seen so far. With
    ``backup_dir``, every finished epoch is backed up there (:class:`EpochBackup` for the weights,
    optimizer and epoch; :class:`TrainingState` for early stopping and the history), and
    a later call with the same ``backup_dir`` continues after the last finished epoch; the
    backup is removed when training ends.

    With a ``tf.distribute`` ``strategy`` (``model`` created in its scope), training runs
    :func:`seqclf.distribute.fit` instead of ``model.fit``, with the same callbacks.

    Examples
    --------
    >>> result = train(model, x, y, x_val, y_val, epochs=1)  # doctest: +SKIP
    >>> result.stopped_by  # doctest: +SKIP
    'epochs'
    """
    check_training_settings(epochs, batch_size, learning_rate, clipnorm, class_weight, patience, label_smoothing,
                            clipvalue, lr_schedule)
    streamed = isinstance(x_train, Streamed)
    budget = training_budget(len(x_train.rows) if streamed else len(y_train), epochs, batch_size, patience)
    n_validation = int(np.sum(np.asarray(y_val) >= 0))
    too_small = lr_schedule == "auto" and patience is None and n_validation < MIN_VALIDATION
    lr_schedule = "cosine" if too_small else "constant" if lr_schedule == "auto" else lr_schedule
    keeping_best = lr_schedule != "cosine"
    budget.update(keeps="best" if keeping_best else "last", learning_rate=learning_rate, lr_schedule=lr_schedule)
    n_classes = model.output_shape[-1]
    bucketed = streamed or strategy is not None or per_step or token_ids(x_train)
    if keeping_best:
        schedule = learning_rate
    else:
        steps = _steps_per_epoch(x_train, y_train, n_classes, budget["batch_size"])
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=budget["epochs"] * steps)
    if too_small:
        log.info("a validation split of %d labels is too small to choose an epoch: training all %d epochs with the "
                 "learning rate annealed to 0 and keeping the last (--patience N chooses by validation loss)",
                 n_validation, budget["epochs"])
    _compile(model, strategy, schedule, clipnorm, clipvalue, label_smoothing, per_step)
    stopper = WarmUpEarlyStopping(monitor="val_loss", patience=budget["patience"], restore_best_weights=keeping_best,
                                  warmup=budget["warmup"] if keeping_best else budget["epochs"])
    history = keras.callbacks.History()
    weights = (class_weights_from_counts(x_train.label_counts, class_weight) if streamed
               else class_weights(y_train[y_train >= 0], n_classes, class_weight))
    fit_data, validation = _batches(x_train, y_train, x_val, y_val, n_classes, budget["batch_size"], weights, bucketed,
                                    own_lengths)
    guard = NonFiniteLossGuard()  # after the early stopper: on a NaN its restore wins
    callbacks = [GradientNorms(), stopper, history, guard]  # the norms first: they join the logs History keeps
    plateau = None
    if lr_schedule == "plateau":
        plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=0,
                                                    verbose=int(bool(verbose)))
        callbacks.insert(1, plateau)
    if log_dir is not None:  # after the norms, which it logs too
        callbacks.insert(1, keras.callbacks.TensorBoard(str(log_dir), write_graph=False))
    backup = None if backup_dir is None else EpochBackup(backup_dir)
    if backup is not None:  # the state first: the backup marks the epoch complete last
        callbacks += [TrainingState(backup_dir, stopper, guard, history, plateau), backup]
    started = time.perf_counter()
    stopped_by = "epochs"
    ctrl_c = CtrlC()
    try:
        with ctrl_c.watching():
            if strategy is None:
                model.fit(**fit_data, validation_data=validation, epochs=budget["epochs"],
                          initial_epoch=backup.restore(model) if backup else 0, callbacks=callbacks + [ctrl_c],
                          verbose=verbose)
            else:
                distribute.fit(model, strategy, fit_data["x"], fit_data["steps_per_epoch"], validation,
                               epochs=budget["epochs"], callbacks=callbacks + [ctrl_c], clipnorm=clipnorm,
                               clipvalue=clipvalue, loss=training_loss(model, label_smoothing, reduction=None),
                               restored=distribute.read_backup(model, backup_dir) if backup else None, verbose=verbose)
        if ctrl_c.pressed:
            raise KeyboardInterrupt
        if stopper.stopped_epoch > 0:
            stopped_by = "early_stopping"
        if guard.tripped:
            stopped_by = "non_finite_loss"
            _report_non_finite(guard, learning_rate, clipnorm, clipvalue)
    except KeyboardInterrupt:
        stopped_by = "interrupted"
        log.warning("interrupted: keeping the %s", "best weights so far" if keeping_best else "current weights")
        if stopper.best_weights is not None:
            model.set_weights(stopper.best_weights)
    return _result(history, guard, stopped_by, time.perf_counter() - started, budget)


def _compile(model, strategy, learning_rate, clipnorm, clipvalue, label_smoothing, per_step):
    """Lazy Adam with clipping, recording the gradient norms (under a strategy, its training step clips the gradients
    summed over workers, and no norms are recorded),
    smoothed cross-entropy, and accuracy over real steps for per-step targets.

    Every variable of training exists before ``model.fit``: the optimizer is built here and the accuracy is a metric
    object (Keras would make both inside the first trace of the training step, and ``tf.function`` then traces the
    step a second time without them: about 1 s more on the movie reviews' ``bigru``).
    """
    clipping = {"clipvalue": clipvalue} if clipvalue is not None else {"global_clipnorm": clipnorm}
    with distribute.scope(strategy):
        model.compile(
            optimizer=LazyAdam(learning_rate=learning_rate, record_gradients=strategy is None,
                               **(clipping if strategy is None else {})),
            loss=training_loss(model, label_smoothing),
            metrics=[StepAccuracy() if per_step else keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        model.optimizer.build(model.trainable_variables)


def training_loss(model, label_smoothing, reduction="sum_over_batch_size"):
    """Cross-entropy with ``label_smoothing``; for a model with a CRF output, the CRF's negative log-likelihood."""
    crf = crf_layer(model)
    if crf is None:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=reduction)
    if label_smoothing:
        raise ConfigError(f"--label-smoothing {label_smoothing:g} does not apply to --head crf (trained on the "
                          f"likelihood of the whole tag sequence); leave it out")
    return CRFLoss(crf, reduction=reduction)


def _steps_per_epoch(x_train, y_train, n_classes, batch_size):
    """The batches of an epoch as :func:`_batches` cuts them: length buckets fill every batch but a pool's last, so
    in memory that is ``ceil(n / batch_size)``; a stream counts its pools."""
    if isinstance(x_train, Streamed):
        return len(StreamBuckets(x_train, n_classes, batch_size))
    return -(-len(y_train) // batch_size)


def _batches(x_train, y_train, x_val, y_val, n_classes, batch_size, weights, bucketed, own_lengths=()):
    """``model.fit``'s training arguments and validation data: length buckets (per step, token ids, streams and
    strategies; -1 marks padding), or the arrays as they are."""
    if not bucketed:
        return ({"x": x_train, "y": one_hot(y_train, n_classes), "class_weight": weights, "batch_size": batch_size},
                (x_val, one_hot(y_val, n_classes)))
    seed = int(np.random.randint(2**31))  # NumPy is seeded by seed_everything
    buckets = (StreamBuckets(x_train, n_classes, batch_size, weights, seed=seed) if isinstance(x_train, Streamed)
               else LengthBuckets(x_train, y_train, n_classes, batch_size, weights, seed=seed, own_lengths=own_lengths))
    # repeated, with the steps given: one iterator for the whole fit (Keras makes a new one each epoch otherwise,
    # and dropping the old iterator of a generator's dataset stalled some epochs' start by 1.6-2.4 s)
    return ({"x": buckets.dataset().repeat(), "steps_per_epoch": len(buckets), "shuffle": False},
            LengthBuckets(x_val, y_val, n_classes, batch_size, own_lengths=own_lengths).dataset())


def _result(history, guard, stopped_by, seconds, budget):
    losses = history.history.get("val_loss", [])
    if not losses:
        raise KeyboardInterrupt("training was interrupted before the first epoch ended")
    return TrainingResult(
        history=history.history,
        epochs_run=len(losses),
        best_epoch=(guard.best_epoch if guard.tripped else
                    int(np.argmin(losses)) + 1 if budget["keeps"] == "best" else len(losses)),
        stopped_by=stopped_by,
        seconds=seconds,
        budget=budget,
    )


def _report_non_finite(guard, learning_rate, clipnorm, clipvalue):
    """Raise if no epoch ended well before the loss blew up; otherwise warn and go on with the best one."""
    epoch, batch = guard.tripped
    clipping = f"--clipvalue {clipvalue:g}" if clipvalue is not None else (
        f"--clipnorm {clipnorm:g}" if clipnorm is not None else "no clipping")
    causes = (f"a learning rate too high for this data (--learning-rate {learning_rate:g}), gradients clipped too "
              f"loosely ({clipping}), or extreme or unscaled input values")
    if guard.best_weights is None:
        raise TrainingError(f"the training loss became NaN or infinite in epoch {epoch} (batch {batch}), before any "
                            f"epoch ended with a finite loss; likely causes: {causes}")
    log.warning("the training loss became NaN or infinite in epoch %d (batch %d): training stopped there and keeps "
                "the weights of epoch %d, the best before it; likely causes: %s", epoch, batch, guard.best_epoch, causes)



