"""Batches for training: examples of about equal length cut to their longest real step, in memory or streamed."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf


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
    to weight (``None``: 1). The inputs numbered in ``own_lengths`` (token ids of a sequence of another length than
    the targets: a translation's source) are cut to their own longest real step instead. :meth:`dataset` gives the batches as a ``tf.data.Dataset`` for ``model.fit``, with the time axis declared
    free (Keras would fix it from the first two batches of a ``PyDataset``, and a later batch of
    another length would fail).
    """

    POOL = 50

    def __init__(self, x, y, n_classes, batch_size, weights=None, seed=None, own_lengths=()):
        self.x, self.several = (x, True) if isinstance(x, (list, tuple)) else ([x], False)
        self.own_lengths = set(own_lengths)
        self.y, self.n_classes, self.batch_size, self.weights = y, n_classes, batch_size, weights
        if y.ndim == 2 or token_ids(self.x[0]):
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
        x = [array[index, :_own_width(array[index]) if i in self.own_lengths else width]
             for i, array in enumerate(self.x)]
        y = self.y[index, :width] if self.y.ndim == 2 else self.y[index]
        return (tuple(x) if self.several else x[0]), one_hot(y, self.n_classes), _step_weights(y, self.weights, self.n_classes)

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
        return _batch_dataset(epoch, signature, len(self))


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
        return _batch_dataset(epoch, signature, len(self))


def token_ids(x):
    """Token ids ``(n, T)``: integers, 0 for the padding after each sequence's tokens."""
    return isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "iu"


def _own_width(ids):
    """The longest real step of a batch of token ids ``(n, T)``, 0 padding after each one's tokens."""
    real = ids > 0
    return max(1, int(real.shape[1] - np.argmax(real[:, ::-1], axis=1).min())) if real.any() else 1


def one_hot(y, n_classes):
    """One-hot targets; padding (-1) as a row of zeros. (Keras' ``to_categorical`` would drop a last axis of
    length 1: a batch of one-step sequences.)"""
    return np.eye(n_classes, dtype="float32")[np.maximum(y, 0)] * (np.asarray(y) >= 0)[..., None]


def _step_weights(y, weights, n_classes):
    """Sample weights per example or step: the class weight (1 without weights), 0 on padding (-1)."""
    by_class = np.array([(weights or {}).get(c, 1.0) for c in range(n_classes)], "float32")
    return np.where(y >= 0, by_class[np.maximum(y, 0)], 0.0).astype("float32")


def _batch_dataset(epoch, signature, n_batches):
    """The ``n_batches`` batches of the generator function ``epoch`` as a ``tf.data.Dataset``, two made ahead, without
    tf.data's autotuning, which has nothing to tune here (the prefetch buffer is fixed).

    The autotuning thread sleeps ever longer between tunings (up to a minute), and dropping an iterator waited for it
    to wake (TensorFlow 2.21): the end of ``model.fit``, where the training iterator is dropped, stalled 5 s after 3
    epochs and up to 38 s after 10, in one fit out of two to eight.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    batches = tf.data.Dataset.from_generator(epoch, output_signature=signature)
    return batches.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2).with_options(options)
