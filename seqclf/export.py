"""SavedModel export in TensorFlow Serving's layout: raw input in, probabilities and class names out."""

import logging
from pathlib import Path

import tensorflow as tf
import keras

from .exported_attention import attention_outputs
from .rundir import write_labels

SIGNATURE = "serving_default"
EXTRA = "assets.extra"  # TF Serving's folder for files beside a SavedModel, which it does not load


def export_saved_model(model, class_names, input_spec, directory):
    """Write ``model`` as a SavedModel whose ``serving_default`` returns probabilities and labels (and, for a model
    pooling by attention, the ``attention`` of each step and the ``steps`` it weighs: see
    :mod:`seqclf.exported_attention`), and the class names in output order beside it (``assets.extra/labels.txt``).

    Parameters
    ----------
    model : keras.Model
        A model taking raw input (for text: a batch of strings) to class probabilities.
    class_names : list of str
        Names of the output classes, in output order.
    input_spec : tf.TensorSpec
        The signature's input, for example ``tf.TensorSpec((None,), tf.string, name="text")``.
    directory : str or Path
        Where to write, normally ``export/<model-name>/<version>``.

    Examples
    --------
    >>> export_saved_model(model, ["neg", "pos"], spec, "run/export/reviews/1")  # doctest: +SKIP
    >>> tf.saved_model.load("run/export/reviews/1").signatures["serving_default"]  # doctest: +SKIP
    """
    names = tf.constant(list(class_names))
    attention = attention_outputs(model)

    @tf.function(input_signature=[input_spec])
    def serve(inputs):
        probabilities = model(inputs, training=False)
        answer = {"probabilities": probabilities, "label": tf.gather(names, tf.argmax(probabilities, axis=-1))}
        return answer if attention is None else {**answer, **attention(inputs)}

    write_archive(model, {SIGNATURE: serve}, directory)
    extra = Path(directory) / EXTRA
    extra.mkdir()
    write_labels(extra, class_names)  # for whoever reads the export without its run: seqclf serve's page


def write_archive(model, endpoints, directory):
    """Write ``model``'s variables and the ``endpoints`` (``{signature name: tf.function with an input signature}``)
    as a SavedModel in ``directory``."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, function in endpoints.items():
        archive.add_endpoint(name, function)
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(max(level, logging.WARNING))  # TensorFlow logs "Assets written to ..." at INFO
    try:
        archive.write_out(str(directory), verbose=False)
    finally:
        tf_log.setLevel(level)

