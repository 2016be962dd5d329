"""Training: compile, fit with early stopping and gradient clipping, survive Ctrl-C."""

import json
import logging
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from . import distribute
from .errors import ConfigError, TrainingError
from .models.builders import check_builder_settings
from .optimizers import LazyAdam

log = logging.getLogger(__name__)
CLASS_WEIGHTS = ("auto", "balanced", "none")
#: What ``auto`` means for class weights and label smoothing unless the adapter says otherwise.
AUTO_TRAINING = {"class_weight": "balanced", "label_smoothing": 0.1}
MIN_UPDATES = 600
MAX_AUTO_EPOCHS = 200


@dataclass
class TrainingResult:
    """What happened during :func:`train`."""

    history: dict
    epochs_run: int
    best_epoch: int
    stopped_by: str  # "early_stopping", "epochs" or "interrupted"
    seconds: float
    budget: dict  # epochs, batch size, patience and warm-up as used (``None`` settings resolved)


@dataclass
class FitSettings:
    """Model and training settings of a run; the defaults are the CLI's defaults."""

    arch: str = "bigru"
    units: tuple = (64,)
    dropout: float = None
    recurrent_dropout: float = 0.0
    pooling: str = "auto"
    task: str = "many-to-one"
    epochs: int = None
    batch_size: int = None
    learning_rate: float = 1e-3
    clipnorm: float = 1.0
    clipvalue: float = None
    class_weight: str = "auto"
    patience: int = None
    label_smoothing: float = None
    val_size: float = 0.1
    test_size: float = 0.1
    seed: int = 0
    strategy: str = "auto"

    def __post_init__(self):
        self.units = check_builder_settings(self.arch, self.units, self.dropout, self.recurrent_dropout, self.pooling,
                                            self.task)
        check_training_settings(self.epochs, self.batch_size, self.learning_rate, self.clipnorm, self.class_weight,
                                self.patience, self.label_smoothing, self.clipvalue)
        for name in ("val_size", "test_size"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"The '{name}' parameter must be in (0, 1). Got {getattr(self, name)!r} instead.")
        if self.strategy not in distribute.STRATEGIES:
            raise ConfigError(f"The 'strategy' parameter must be one of {', '.join(distribute.STRATEGIES)}. "
                              f"Got {self.strategy!r} instead.")
        if self.val_size + self.test_size >= 1.0:
            raise ConfigError("val_size + test_size must leave some data for training (their sum is >= 1)")


def seed_everything(seed):
    """Make a run repeatable: seed Python, NumPy and TensorFlow, and use deterministic ops."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


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
    that, early stopping only starts watching after half of them (``warmup``): a small model
    on a few series learns slowly at first, and a validation split of a handful of series
    would otherwise stop it before it starts.

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
                            clipvalue=None):
    """Raise :class:`ConfigError` for a training setting that cannot work (``None``: auto, see :func:`training_budget`)."""
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("patience", patience, 0)):
        if value is None:
            continue
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ConfigError(f"The '{name}' parameter must be an integer >= {low}. Got {value!r} instead.")
    if not learning_rate > 0:
        raise ConfigError(f"The 'learning_rate' parameter must be > 0. Got {learning_rate!r} instead.")
    for name, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
        if value is not None and not value > 0:
            raise ConfigError(f"The '{name}' parameter must be > 0. Got {value!r} instead.")
    if class_weight not in CLASS_WEIGHTS:
        raise ConfigError(f"The 'class_weight' parameter must be one of {', '.join(CLASS_WEIGHTS)}. Got {class_weight!r} instead.")
    if label_smoothing is not None and not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"The 'label_smoothing' parameter must be in [0, 1). Got {label_smoothing!r} instead.")


def train(model, x_train, y_train, x_val, y_val, *, epochs=None, batch_size=None, learning_rate=1e-3, clipnorm=1.0,
          clipvalue=None, class_weight="balanced", patience=None, label_smoothing=0.0, verbose=1, backup_dir=None,
          strategy=None):
    """Compile and fit ``model``; keep the weights of the epoch with the lowest validation loss.

    ``y_train`` and ``y_val`` hold class indices: ``(n_samples,)`` for one label per sequence,
    or ``(n_samples, n_timesteps)`` for one per step, with -1 on padded steps (left out of the
    loss and the metrics; class weights become per-step sample weights).

    The loss is cross-entropy with ``label_smoothing`` (targets ``1 - s + s/k`` and ``s/k``):
    it keeps the model from growing over-confident, so the validation loss keeps tracking
    accuracy for longer and early stopping does not stop at the first epoch.

    Gradients are clipped, because backpropagation through time multiplies by the recurrent
    weights once per step and can blow up on long sequences (exploding gradients): by default
    all gradients together are scaled down when their global norm exceeds ``clipnorm``, which
    keeps their direction; ``clipvalue`` instead clips each component to [-clipvalue, clipvalue]
    (and replaces ``clipnorm``). The optimizer is Adam, lazy on embeddings
    (:class:`~seqclf.optimizers.LazyAdam`: a batch updates only the rows of its own words).

    Ctrl-C stops training early and still restores the best weights seen so far. With
    ``backup_dir``, every finished epoch is backed up there (Keras' ``BackupAndRestore`` for the
    weights, optimizer and epoch; :class:`TrainingState` for early stopping and the history), and
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
                            clipvalue)
    streamed = isinstance(x_train, Streamed)
    budget = training_budget(len(x_train.rows) if streamed else len(y_train), epochs, batch_size, patience)
    epochs, batch_size, patience = budget["epochs"], budget["batch_size"], budget["patience"]
    n_classes = model.output_shape[-1]
    clipping = {"clipvalue": clipvalue} if clipvalue is not None else {"global_clipnorm": clipnorm}
    with distribute.scope(strategy):  # under a strategy, its training step clips the gradients summed over workers
        model.compile(
            optimizer=LazyAdam(learning_rate=learning_rate, **(clipping if strategy is None else {})),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            metrics=[StepAccuracy() if np.ndim(y_train) == 2 else "accuracy"],
        )
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True,
                                            start_from_epoch=budget["warmup"])
    history = keras.callbacks.History()
    weights = (class_weights_from_counts(x_train.label_counts, class_weight) if streamed
               else class_weights(y_train[y_train >= 0], n_classes, class_weight))
    if streamed or strategy is not None or np.ndim(y_train) == 2 or _token_ids(x_train):  # per step (-1: padding)
        seed = int(np.random.randint(2**31))  # NumPy is seeded by seed_everything
        buckets = (StreamBuckets(x_train, n_classes, batch_size, weights, seed=seed) if streamed  # a pool at a time
                   else LengthBuckets(x_train, y_train, n_classes, batch_size, weights, seed=seed))
        # repeated, with the steps given: one iterator for the whole fit (Keras makes a new one each epoch otherwise,
        # and dropping the old iterator of a generator's dataset stalled some epochs' start by 1.6-2.4 s)
        fit_data = {"x": buckets.dataset().repeat(), "steps_per_epoch": len(buckets), "shuffle": False}
        validation = LengthBuckets(x_val, y_val, n_classes, batch_size).dataset()
        batch_size = None  # the buckets make the batches
    else:
        fit_data = {"x": x_train, "y": _one_hot(y_train, n_classes), "class_weight": weights}
        validation = (x_val, _one_hot(y_val, n_classes))
    guard = NonFiniteLossGuard()  # after the early stopper: on a NaN its restore wins
    callbacks = [stopper, history, guard]
    if backup_dir is not None:  # the state first: BackupAndRestore writes the epoch number last
        backup = keras.callbacks.BackupAndRestore if strategy is None else distribute.ChiefBackup
        callbacks += [TrainingState(backup_dir, stopper, guard, history), backup(str(backup_dir))]
    started = time.perf_counter()
    stopped_by = "epochs"
    ctrl_c = CtrlC()
    try:
        with ctrl_c.watching():
            if strategy is None:
                model.fit(**fit_data, validation_data=validation, epochs=epochs, batch_size=batch_size,
                          callbacks=callbacks + [ctrl_c], verbose=verbose)
            else:
                distribute.fit(model, strategy, fit_data["x"], fit_data["steps_per_epoch"], validation, epochs=epochs,
                               callbacks=callbacks + [ctrl_c], clipnorm=clipnorm, clipvalue=clipvalue,
                               label_smoothing=label_smoothing, verbose=verbose)
        if ctrl_c.pressed:
            raise KeyboardInterrupt
        if stopper.stopped_epoch > 0:
            stopped_by = "early_stopping"
        if guard.tripped:
            stopped_by = "non_finite_loss"
            _report_non_finite(guard, learning_rate, clipnorm, clipvalue)
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
        best_epoch=guard.best_epoch if guard.tripped else _best_epoch(losses, budget["warmup"]),
        stopped_by=stopped_by,
        seconds=seconds,
        budget=budget,
    )


@keras.saving.register_keras_serializable(package="seqclf")
class StepAccuracy(keras.metrics.Metric):
    """Accuracy over the real steps of per-step targets, whose padding is a row of zeros.

    Keras' ``accuracy`` would count padded steps too (their weight of 0 reaches the loss only).
    """

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.steps = self.add_variable(shape=(), initializer="zeros", name="steps")

    def update_state(self, y_true, y_pred, sample_weight=None):
        real = keras.ops.cast(keras.ops.sum(y_true, axis=-1) > 0, "float32")
        hit = keras.ops.cast(keras.ops.argmax(y_true, axis=-1) == keras.ops.argmax(y_pred, axis=-1), "float32")
        self.hits.assign_add(keras.ops.sum(hit * real))
        self.steps.assign_add(keras.ops.sum(real))

    def result(self):
        return self.hits / keras.ops.maximum(self.steps, 1.0)

    def reset_state(self):
        self.hits.assign(0.0)
        self.steps.assign(0.0)


class LengthBuckets:
    """Batches of examples of about the same length, each cut to its longest real step.

    Sequences of very different lengths (sentences of 3 to 150 tokens) padded to the longest
    one in the data would spend most of the recurrent steps on padding; here a batch only runs
    as many steps as its longest member. With a ``seed``, each epoch shuffles the examples,
    sorts them by length within pools of ``POOL`` batches and shuffles the batch order, so batches
    still differ from epoch to epoch; without one (validation), the order is fixed.

    ``x`` is an array ``(n, T, ...)`` or a list of them (several inputs); ``y`` holds class
    indices, ``(n, T)`` per step with -1 on padding (which gets weight 0), or ``(n,)`` per
    sequence, whose lengths are then read from token ids ``x`` (``(n, T)`` integers, 0 padding
    after the tokens; any other ``x`` is used at its full length); ``weights`` maps class index
    to weight (``None``: 1). :meth:`dataset` gives the batches as a ``tf.data.Dataset`` for ``model.fit``, with the time axis declared
    free (Keras would fix it from the first two batches of a ``PyDataset``, and a later batch of
    another length would fail).
    """

    POOL = 50

    def __init__(self, x, y, n_classes, batch_size, weights=None, seed=None):
        self.x, self.several = (x, True) if isinstance(x, (list, tuple)) else ([x], False)
        self.y, self.n_classes, self.batch_size, self.weights = y, n_classes, batch_size, weights
        if y.ndim == 2 or _token_ids(self.x[0]):
            real = y >= 0 if y.ndim == 2 else self.x[0] > 0
            self.lengths = np.where(real.any(axis=1), real.shape[1] - np.argmax(real[:, ::-1], axis=1), 1)
        else:  # series of numbers: their full length (missing steps are masked inside the model)
            self.lengths = np.full(len(y), self.x[0].shape[1])
        self.rng = None if seed is None else np.random.default_rng(seed)
        self._plan()

    def _plan(self):
        n, size = len(self.y), self.batch_size
        order = self.rng.permutation(n) if self.rng is not None else np.arange(n)
        pool = self.POOL * size if self.rng is not None else n
        batches = []
        for start in range(0, n, pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
        if self.rng is not None:
            self.rng.shuffle(batches)
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, number):
        index = self.batches[number]
        width = int(self.lengths[index].max())
        x = [array[index, :width] for array in self.x]
        y = self.y[index, :width] if self.y.ndim == 2 else self.y[index]
        return (tuple(x) if self.several else x[0]), _one_hot(y, self.n_classes), _step_weights(y, self.weights, self.n_classes)

    def dataset(self):
        """One pass = one epoch (replanned each time when seeded), two batches made ahead."""
        def epoch():
            for number in range(len(self)):
                yield self[number]
            if self.rng is not None:
                self._plan()

        free = (None, None)
        inputs = tuple(tf.TensorSpec(free + a.shape[2:], tf.as_dtype(a.dtype)) for a in self.x)
        targets = free[: self.y.ndim] + (self.n_classes,)
        signature = (inputs if self.several else inputs[0], tf.TensorSpec(targets, tf.float32),
                     tf.TensorSpec(free[: self.y.ndim], tf.float32))
        batches = tf.data.Dataset.from_generator(epoch, output_signature=signature)
        return batches.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


@dataclass
class Streamed:
    """Training examples too many for memory: ``rows`` (a :class:`~seqclf.data.shards.RowStream`) gives chunks of
    prepared rows, ``encode`` and ``targets`` turn a chunk into token ids and class indices; ``label_counts`` holds
    the number of rows of each class index."""

    rows: object
    encode: object
    targets: object
    label_counts: np.ndarray


class StreamBuckets:
    """:class:`LengthBuckets` over a :class:`Streamed` set: ``POOL_ROWS`` rows at a time are encoded, shuffled and
    cut into batches of about equal length; the shards come in a new random order each epoch.

    Memory holds one pool (the bounded shuffle buffer) and one chunk of the reader, whatever the number of rows.
    The number of batches is known in advance: pools are cut by the count of rows, not by the files.
    """

    POOL_ROWS = 20_000

    def __init__(self, examples, n_classes, batch_size, weights=None, seed=0):
        self.examples, self.n_classes, self.batch_size, self.weights = examples, n_classes, batch_size, weights
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        full, rest = divmod(len(self.examples.rows), self.POOL_ROWS)
        return full * -(-self.POOL_ROWS // self.batch_size) + -(-rest // self.batch_size)

    def _pools(self):
        waiting, size = [], 0
        for chunk in self.examples.rows.chunks(self.rng):
            waiting.append(chunk)
            size += len(chunk)
            while size >= self.POOL_ROWS:
                rows = pd.concat(waiting, ignore_index=True)
                yield rows.iloc[: self.POOL_ROWS]
                waiting, size = [rows.iloc[self.POOL_ROWS:]], size - self.POOL_ROWS
        if size:
            yield pd.concat(waiting, ignore_index=True)

    def dataset(self):
        """One pass over the stream = one epoch, two batches made ahead."""
        def epoch():
            for pool in self._pools():
                buckets = LengthBuckets(self.examples.encode(pool), self.examples.targets(pool), self.n_classes,
                                        self.batch_size, self.weights, seed=int(self.rng.integers(2**31)))
                for number in range(len(buckets)):
                    yield buckets[number]

        signature = (tf.TensorSpec((None, None), tf.int64), tf.TensorSpec((None, self.n_classes), tf.float32),
                     tf.TensorSpec((None,), tf.float32))
        batches = tf.data.Dataset.from_generator(epoch, output_signature=signature)
        return batches.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


class CtrlC(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) stops training at the end of the current batch; a second Ctrl-C interrupts at once.

    A ``KeyboardInterrupt`` raised wherever the main thread happens to be (inside TensorFlow's
    checkpoint or data code) can be lost there; a flag read after every batch cannot.
    """

    def __init__(self):
        super().__init__()
        self.pressed = False

    @contextmanager
    def watching(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers belong to the main thread; elsewhere Ctrl-C stays Python's
            return
        previous = signal.signal(signal.SIGINT, self._press)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _press(self, signum, frame):
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def on_train_batch_end(self, batch, logs=None):
        if self.pressed:
            self.model.stop_training = True


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop at the first batch whose loss is NaN or infinite, and keep the best finite epoch's weights.

    Like Keras' ``TerminateOnNaN``, it stops training at once; unlike it, it remembers where
    (``tripped``: epoch and batch, from 1) and, when it stops, restores the weights of the epoch
    with the lowest finite validation loss so far (``best_epoch``; none if no epoch ended well),
    also during the warm-up, before early stopping starts to watch.
    """

    def __init__(self):
        super().__init__()
        self.tripped, self.best_epoch, self.best_loss, self.best_weights, self._epoch = None, None, np.inf, None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if self.tripped is None and loss is not None and not np.isfinite(float(loss)):
            self.tripped = (self._epoch + 1, batch + 1)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        loss, val_loss = (logs or {}).get("loss", np.nan), (logs or {}).get("val_loss", np.nan)
        if self.tripped is None and np.isfinite(loss) and np.isfinite(val_loss) and val_loss < self.best_loss:
            self.best_epoch, self.best_loss, self.best_weights = epoch + 1, val_loss, self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.tripped is not None and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class TrainingState(keras.callbacks.Callback):
    """Back up what Keras' ``BackupAndRestore`` (weights with the optimizer's state, and the epoch) does not:
    early stopping, the NaN guard and the history.

    Saved at each epoch's end as ``state-<epoch>.json`` (and the best weights so far as
    ``best-<epoch>.npz``) in ``backup_dir``, before ``BackupAndRestore`` saves the weights and
    the epoch; on a resumed run it restores the state of the epoch ``BackupAndRestore`` resumes
    from, so early stopping goes on as if training had never stopped.
    """

    def __init__(self, backup_dir, stopper, guard, history):
        super().__init__()
        self.backup_dir, self.stopper, self.guard, self.history = Path(backup_dir), stopper, guard, history

    def on_train_begin(self, logs=None):
        metadata = self.backup_dir / "training_metadata.json"
        if not metadata.exists():
            return
        epoch = json.loads(metadata.read_text())["epoch"]
        state_path = self.backup_dir / f"state-{epoch}.json"
        if not state_path.exists():
            return
        state = json.loads(state_path.read_text())
        self.stopper.best, self.stopper.wait, self.stopper.best_epoch = state["best"], state["wait"], state["best_epoch"]
        self.guard.best_loss, self.guard.best_epoch = state["guard_best_loss"], state["guard_best_epoch"]
        saved = np.load(self.backup_dir / f"best-{epoch}.npz")
        for owner, key in ((self.stopper, "stopper"), (self.guard, "guard")):
            weights = [saved[f"{key}{i}"] for i in range(state[f"{key}_weights"])]
            owner.best_weights = weights or None
        self.history.history = state["history"]
        self.history.epoch = list(range(epoch))
        log.info("resuming after epoch %d from the backup in %s", epoch, self.backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"{key}{i}": w for key, owner in (("stopper", self.stopper), ("guard", self.guard))
                  for i, w in enumerate(owner.best_weights or [])}
        np.savez(self.backup_dir / f"best-{epoch + 1}.npz", **arrays)
        best = self.stopper.best  # None until early stopping starts watching (after the warm-up)
        state = {"best": None if best is None else float(best), "wait": self.stopper.wait, "best_epoch": self.stopper.best_epoch,
                 "stopper_weights": len(self.stopper.best_weights or []), "guard_weights": len(self.guard.best_weights or []),
                 "guard_best_loss": float(self.guard.best_loss), "guard_best_epoch": self.guard.best_epoch,
                 "history": {k: [float(v) for v in values] for k, values in self.history.history.items()}}
        (self.backup_dir / f"state-{epoch + 1}.json").write_text(json.dumps(state))
        for old in (f"state-{epoch - 1}.json", f"best-{epoch - 1}.npz"):  # keep this epoch's and the one before
            (self.backup_dir / old).unlink(missing_ok=True)


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


def _best_epoch(losses, warmup):
    """The epoch (from 1) whose weights early stopping kept: the lowest validation loss after the warm-up."""
    watched = losses[warmup:]
    return warmup + int(np.argmin(watched)) + 1 if watched else len(losses)


def _token_ids(x):
    """Token ids ``(n, T)``: integers, 0 for the padding after each sequence's tokens."""
    return isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "iu"


def _one_hot(y, n_classes):
    """One-hot targets; padding (-1) as a row of zeros. (Keras' ``to_categorical`` would drop a last axis of
    length 1: a batch of one-step sequences.)"""
    return np.eye(n_classes, dtype="float32")[np.maximum(y, 0)] * (np.asarray(y) >= 0)[..., None]


def _step_weights(y, weights, n_classes):
    """Sample weights per example or step: the class weight (1 without weights), 0 on padding (-1)."""
    by_class = np.array([(weights or {}).get(c, 1.0) for c in range(n_classes)], "float32")
    return np.where(y >= 0, by_class[np.maximum(y, 0)], 0.0).astype("float32")
