"""Training on several devices or machines with TensorFlow's own engine, ``tf.distribute``.

``--strategy multi-worker`` runs ``tf.distribute.MultiWorkerMirroredStrategy``: one process per
machine, each started with the same command and a ``TF_CONFIG`` naming the cluster and its own
place in it. ``mirrored`` is ``tf.distribute.MirroredStrategy`` over the local GPUs.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` ("Attempt to convert a
value (PerReplica...) to a Tensor"; keras-team/keras#20585, tensorflow/tensorflow#72388), so
:func:`fit` is a training step of our own, ``strategy.run`` inside a ``tf.function``, driven
by the same Keras callbacks ``model.fit`` would call: early stopping with the best weights,
history, progress bar, backups. Each global batch is split across the workers (tf.data's
``DATA`` auto-sharding of the batched stream), and the gradients are summed over all workers
before clipping, so a run on N workers computes what one process computes with the same
global batch.
"""

import hashlib
import json
import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .errors import ConfigError, TrainingError
from .optimizers import clip_gradients, scale
from .training.backup import finished_epoch, weights_path

log = logging.getLogger(__name__)
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")
#: Errors TensorFlow raises when a peer of a collective operation has gone away.
LOST_PEER = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
             tf.errors.AbortedError, tf.errors.InternalError)
_made = {}  # strategy name -> strategy: TensorFlow allows one collective set-up per process


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster that ``TF_CONFIG`` describes (one worker when it is unset)."""

    workers: int = 1
    index: int = 0
    chief: bool = True

    @classmethod
    def from_environment(cls):
        raw = os.environ.get("TF_CONFIG", "").strip()
        if not raw:
            return cls()
        try:
            config = json.loads(raw)
            cluster, task = config["cluster"], config["task"]
            kind, index = task["type"], int(task["index"])
            workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"TF_CONFIG is not a cluster description ({error}); expected "
                              '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
                              ) from None
        if kind not in ("worker", "chief") or not 0 <= index < len(cluster.get(kind, [])):
            raise ConfigError(f"TF_CONFIG task {kind!r} {index} is not in its cluster {json.dumps(cluster)}")
        chief = kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))
        return cls(workers=max(1, workers), index=index, chief=chief)


def make_strategy(name):
    """The ``tf.distribute`` strategy ``name`` stands for; ``None`` for ``default`` (Keras' own ``model.fit``).

    ``auto`` is ``multi-worker`` when ``TF_CONFIG`` names more than one worker, ``mirrored``
    when more than one GPU is visible, else ``default``. Call it before TensorFlow runs anything
    else in the process: collective operations are configured at start-up.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"The 'strategy' parameter must be one of {', '.join(STRATEGIES)}. Got {name!r} instead.")
    cluster = Cluster.from_environment()
    if name == "auto":
        gpus = tf.config.list_physical_devices("GPU")
        name = "multi-worker" if cluster.workers > 1 else "mirrored" if len(gpus) > 1 else "default"
    if name != "multi-worker" and cluster.workers > 1:
        raise ConfigError(f"TF_CONFIG names a cluster of {cluster.workers} workers, but --strategy {name} trains on "
                          f"this machine alone; use --strategy multi-worker (or auto), or unset TF_CONFIG")
    if name == "default":
        return None
    if name not in _made:
        try:
            _made[name] = (tf.distribute.MirroredStrategy() if name == "mirrored"
                           else tf.distribute.MultiWorkerMirroredStrategy())
        except (RuntimeError, ValueError, tf.errors.OpError) as error:
            raise ConfigError(f"cannot start the {name} strategy: {error} (start a new process and choose the "
                              f"strategy before anything else runs TensorFlow)") from None
        log.info("training with %s over %d replica(s)%s", type(_made[name]).__name__,
                 _made[name].num_replicas_in_sync,
                 f"; this is worker {cluster.index} of {cluster.workers}" if cluster.workers > 1 else "")
    return _made[name]


def scope(strategy):
    """Where models and optimizers must be created: the strategy's scope, or nowhere special."""
    return strategy.scope() if strategy is not None else nullcontext()


def check_same_everywhere(strategy, fingerprint, what):
    """Raise unless every worker computed the same ``fingerprint`` (a string) for ``what``."""
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return
    value = int.from_bytes(hashlib.sha256(fingerprint.encode()).digest()[:6], "big")  # 48 bits: exact in float64
    if len(set(_everyone(strategy, float(value)))) > 1:
        raise TrainingError(f"the workers learned different {what}: they must all read the same data files "
                            f"with the same settings")


def local_copy(model):
    """The trained ``model`` as a plain Keras model outside any strategy, for prediction and export."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def fit(model, strategy, train_batches, steps, val_batches, *, epochs, callbacks, clipnorm, clipvalue, loss, restored,
        verbose):
    """Train a compiled ``model`` created in ``strategy.scope()`` on tf.data batches ``(x, one-hot y, weights)``:
    ``train_batches`` repeats, ``steps`` of them make an epoch.

    Padding steps carry weight 0 and a target row of zeros. The loss of a global batch is the
    weighted ``loss`` (a Keras loss without reduction: one value per step) summed over its real steps, divided by their number over all workers
    (``tf.nn.compute_average_loss``); accuracy counts the real steps. ``callbacks`` see the same
    calls and logs as under ``model.fit``. Training stops on all workers together: at the end of
    an epoch when any of them asks to (early stopping, Ctrl-C), at once on a NaN loss (all
    workers see the same loss). ``restored`` is the chief's :func:`read_backup` (``None`` elsewhere): every worker
    starts from it.
    """
    val_steps = int(val_batches.cardinality())
    train_data, val_data = (strategy.experimental_distribute_dataset(_split_batches(d)) for d in (train_batches, val_batches))
    train_step, val_step = _steps(model, strategy, clipnorm, clipvalue, loss)
    callbacks = keras.callbacks.CallbackList(callbacks, add_progbar=verbose > 0, model=model, verbose=verbose,
                                             epochs=epochs, steps=steps)
    model.stop_training = False
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    callbacks.on_train_begin()
    first = _from_chief(strategy, model, restored)
    done, batches = first, iter(train_data)
    try:
        for epoch in range(first, epochs):
            callbacks.on_epoch_begin(epoch)
            sums = np.zeros(3)
            for step in range(steps):
                callbacks.on_train_batch_begin(step)
                loss, hits, count = (float(v) for v in train_step(batches))
                sums += (loss * count, hits, count)
                logs = {"loss": sums[0] / max(sums[2], 1), "accuracy": sums[1] / max(sums[2], 1)}
                callbacks.on_train_batch_end(step, {**logs, "loss": loss} if not np.isfinite(loss) else logs)
                if not np.isfinite(loss):
                    break
            if not np.isfinite(loss):
                break
            val, val_iterator = np.zeros(3), iter(val_data)
            for _ in range(val_steps):
                loss, hits, count = (float(v) for v in val_step(val_iterator))
                val += (loss * count, hits, count)
            logs |= {"val_loss": val[0] / max(val[2], 1), "val_accuracy": val[1] / max(val[2], 1)}
            callbacks.on_epoch_end(epoch, logs)
            done = epoch + 1
            if _everyone(strategy, float(model.stop_training)).max():
                break
    except LOST_PEER as error:
        raise TrainingError(f"training lost contact with another worker ({type(error).__name__}: "
                            f"{str(error).splitlines()[0][:200]}) after {done} finished epoch(s); start every worker "
                            f"again with the same command to resume from there") from None
    callbacks.on_train_end()


def _split_batches(batches):
    """Each worker takes its slice of every global batch (tf.data's ``DATA`` auto-sharding)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options)


def _steps(model, strategy, clipnorm, clipvalue, loss_fn):
    """``tf.function`` training and validation steps; each takes an iterator and returns loss, hits, real steps."""
    replicas = strategy.num_replicas_in_sync

    def measure(x, y, weights, training):
        context = tf.distribute.get_replica_context()
        probabilities = model(x, training=training)
        real = tf.cast(tf.reduce_sum(y, axis=-1) > 0, tf.float32)
        count = context.all_reduce("SUM", tf.reduce_sum(real))
        loss = tf.nn.compute_average_loss(tf.reshape(loss_fn(y, probabilities) * weights, [-1]),
                                          global_batch_size=tf.maximum(tf.cast(count, tf.int64), 1))
        hits = tf.reduce_sum(real * tf.cast(tf.argmax(y, -1) == tf.argmax(probabilities, -1), tf.float32))
        return loss, hits, tf.reduce_sum(real)

    def train_replica(x, y, weights):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            loss, hits, count = measure(x, y, weights, True)
        variables = model.trainable_variables
        grads = clip_gradients(context.all_reduce("SUM", tape.gradient(loss, variables)), clipnorm, clipvalue)
        # the optimizer sums the replicas' gradients once more: hand it a share of the clipped global gradient
        model.optimizer.apply_gradients(zip([scale(g, 1 / replicas) for g in grads], variables))
        return loss, hits, count

    def reduced(replica):
        @tf.function
        def step(iterator):
            loss, hits, count = strategy.run(replica, args=next(iterator))
            return tuple(strategy.reduce("SUM", v, axis=None) for v in (loss, hits, count))
        return step

    return reduced(train_replica), reduced(lambda x, y, weights: measure(x, y, weights, False))


def _everyone(strategy, value):
    """``value`` (a number) as every replica of every worker has it: an array, one entry per replica."""
    per_replica = strategy.run(lambda: tf.constant([value], tf.float64))
    return strategy.gather(per_replica, axis=0).numpy()


def read_backup(model, backup_dir):
    """The chief's last complete epoch backup in ``backup_dir``: ``(epoch, values of _state_variables)``, or ``None``.

    Under ``MultiWorkerMirroredStrategy``, loading weights on one worker alone would run
    collective operations the others do not (the run fails with "Collective instance ...
    expected type 1"): the weights are read into a copy of ``model`` outside the strategy, and
    :func:`fit` hands the values to every worker together.
    """
    epoch = finished_epoch(backup_dir)
    if not epoch:
        return None
    plain = keras.models.clone_model(model)  # outside the strategy: loading it runs no collectives
    plain.compile(optimizer=keras.optimizers.Adam())
    plain.optimizer.build(plain.trainable_variables)
    plain.load_weights(weights_path(backup_dir, epoch))
    return epoch, [v.numpy() for v in _state_variables(plain)]


def _state_variables(model):
    """Everything training changes: the model's weights and the optimizer's state, in a fixed order."""
    return list(model.trainable_variables) + list(model.non_trainable_variables) + list(model.optimizer.variables)


def _from_chief(strategy, model, restored):
    """Give every worker the chief's weights and optimizer state, and the epoch to start from; return that epoch.

    ``restored`` is what the chief read from its backup (``(epoch, values)``), or ``None``. Only
    the chief keeps backups: after a restart the other workers (which may run on fresh machines)
    take the state from it. Every worker runs the same collective operations here.
    """
    cluster = Cluster.from_environment()
    variables = _state_variables(model)
    epoch, values = restored if restored else (0, None)
    if cluster.workers == 1:
        if values is not None:
            for variable, value in zip(variables, values):
                variable.assign(value)
        return int(epoch)
    chief = 1.0 if cluster.chief else 0.0
    mine = [tf.cast(v.value if values is None else value, tf.float64) * chief
            for v, value in zip(variables, values or variables)]

    @tf.function
    def chiefs_values():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("SUM", mine))

    with strategy.scope():
        for variable, value in zip(variables, chiefs_values()):
            variable.assign(tf.cast(strategy.experimental_local_results(value)[0], variable.dtype))
    first = int(_everyone(strategy, float(epoch) * chief).sum())
    if first and not cluster.chief:
        log.info("continuing after epoch %d with the chief's weights", first)
    return first
