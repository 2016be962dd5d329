"""Callbacks of a fit: accuracy over real steps, gradient norms, Ctrl-C and the NaN guard (the epoch backups are in
:mod:`seqclf.training.backup`)."""

import logging
import signal
import threading
from contextlib import contextmanager

import keras
import numpy as np

log = logging.getLogger("seqclf.training")


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


class WarmUpEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' early stopping that does not stop during the first ``warmup`` epochs but keeps their best one.

    Keras' ``start_from_epoch`` does both: it neither stops nor looks during the warm-up, so a
    model that was best in epoch 9 of a 23-epoch warm-up kept epoch 24. Here every epoch counts
    for the best weights; only the decision to stop waits.
    """

    def __init__(self, warmup=0, **kwargs):
        super().__init__(**kwargs)
        self.warmup = warmup

    def on_epoch_end(self, epoch, logs=None):
        stopping = self.model.stop_training  # asked by someone else (Ctrl-C): left as it is
        super().on_epoch_end(epoch, logs)
        if not stopping and self.model.stop_training and epoch < self.warmup:
            self.model.stop_training, self.stopped_epoch = False, 0


class GradientNorms(keras.callbacks.Callback):
    """Per epoch, the median and the largest global gradient norm before clipping, and the share of training steps
    whose gradients clipping changed: ``gradient_norm_median``, ``gradient_norm_max`` and ``clipped_share`` in the
    epoch's logs (so in the history), read from an optimizer that records them (``LazyAdam(record_gradients=True)``).

    An epoch of more than :data:`~seqclf.optimizers.NORM_BUFFER` steps is summarised by its last ones.
    Exploding gradients show as a maximum far above the median; a clipped share near 1 says ``--clipnorm`` binds at
    almost every step (the learning rate then acts smaller than it is).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._first = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if logs is None or not getattr(optimizer, "record_gradients", False):
            return
        from ..optimizers import NORM_BUFFER

        steps = np.arange(self._first, int(keras.ops.convert_to_numpy(optimizer.iterations)))[-NORM_BUFFER:]
        if len(steps):
            norms = keras.ops.convert_to_numpy(optimizer.gradient_norms)[steps % NORM_BUFFER]
            clipped = keras.ops.convert_to_numpy(optimizer.clipped)[steps % NORM_BUFFER]
            logs.update(gradient_norm_median=float(np.median(norms)), gradient_norm_max=float(np.max(norms)),
                        clipped_share=float(np.mean(clipped)))


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
