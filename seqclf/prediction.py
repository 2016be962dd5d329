"""Batched prediction with a fitted model: one traced function per model, raw inputs sliced into batches."""

import logging
import weakref
from weakref import WeakKeyDictionary

import numpy as np
import tensorflow as tf

PREDICT_BATCH = 256
_predictors = WeakKeyDictionary()  # model -> its one traced prediction function


class _OwnRetracing(logging.Filter):
    """TensorFlow counts the training and prediction functions of different models (one each, traced once: for
    every fit of a cross-validation) as one function retracing; that warning is about them, not about anything
    the user can change, so it is dropped."""

    FUNCTIONS = ("_predict_batch", "TensorFlowTrainer._make_function")

    def filter(self, record):
        message = record.getMessage()
        return not ("retracing" in message and any(name in message for name in self.FUNCTIONS))


logging.getLogger("tensorflow").addFilter(_OwnRetracing())


def predict_proba(model, adapter, frame):
    """Class probabilities of a fitted ``model`` for the rows of ``frame``, in batches.

    The adapter's raw inputs are one array or, for a model of several inputs, a dict of arrays by input name.
    One ``tf.function`` per model (traced again only for new input ranks, with ``reduce_retracing``), so
    that predicting with many models in turn (cross-validation) neither retraces nor warns about it.
    """
    inputs = adapter.raw_inputs(frame)
    if model not in _predictors:
        held = weakref.ref(model)  # the cache must not keep the model alive

        def _predict_batch(x):
            return held()(x, training=False)

        _predictors[model] = tf.function(_predict_batch, reduce_retracing=True)
    predictor = _predictors[model]
    n_rows = len(tf.nest.flatten(inputs)[0])
    batches = [predictor(tf.nest.map_structure(lambda values: _tensor(values[i:i + PREDICT_BATCH]), inputs)).numpy()
               for i in range(0, n_rows, PREDICT_BATCH)]
    return np.concatenate(batches) if batches else model.predict(inputs, verbose=0)


def _tensor(values):
    """Strings (object arrays; Keras refuses NumPy unicode) as ``tf.string``, numbers as they are."""
    return tf.constant(values.astype(str), tf.string) if values.dtype == object else tf.constant(values)
