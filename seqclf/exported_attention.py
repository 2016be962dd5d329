"""The attention pooling's weights as outputs of an exported classifier, so a client (and ``seqclf serve``'s page) can
shade the input by them: ``attention`` ``(n, T)``, each real step's weight (0 on padding), and ``steps`` ``(n, T)``,
what each step is ("" on padding): the token the model read for text (``[UNK]`` for a word it does not know), the
first input step it stands for otherwise (a step of a long series averaged down stands for ``factor`` of them)."""

import keras
import tensorflow as tf

from .explain import core_of, preprocessed
from .models.fcn import DimensionShuffle
from .models.layers import AdditivePooling, StepAveraging

OUTPUTS = ("attention", "steps")


class _AttentionWeights(keras.layers.Layer):
    """``pooling``'s weights for its own input and mask, and which steps are real; a view used only by exports."""

    def __init__(self, pooling, **kwargs):
        super().__init__(**kwargs)
        self.pooling = pooling
        self.supports_masking = True

    def call(self, inputs, mask=None):
        real = keras.ops.ones(keras.ops.shape(inputs)[:2], "bool") if mask is None else mask
        return self.pooling.attention(inputs, mask), real

    def compute_mask(self, inputs, mask=None):
        return None, None


def attention_outputs(model):
    """For ``model`` (raw input in, as ``adapter.wrap`` made it): a function of the raw input giving
    ``{"attention": ..., "steps": ...}`` in a graph, or ``None`` when the model does not pool by attention over time
    steps (no ``+attn``, or LSTM-FCN's dimension shuffle, whose recurrent steps are channels)."""
    core = core_of(model)
    poolings = [layer for layer in core.layers if isinstance(layer, AdditivePooling)]
    if not poolings or any(isinstance(layer, DimensionShuffle) for layer in core.layers):
        return None
    sequence = poolings[0].input
    sequence = sequence[0] if isinstance(sequence, list) else sequence  # Keras lists the mask it passed beside it
    weights = keras.Model(core.inputs, _AttentionWeights(poolings[0])(sequence))
    vectorizers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    vocabulary = tf.constant(vectorizers[0].get_vocabulary()) if vectorizers else None
    factor = next((layer.factor for layer in core.layers if isinstance(layer, StepAveraging)), 1)

    def outputs(raw):
        encoded = preprocessed(model, core, raw)
        attention, real = weights(encoded, training=False)
        if vocabulary is not None:
            names = tf.gather(vocabulary, tf.cast(encoded, tf.int64))
        else:
            starts = tf.strings.as_string(tf.range(tf.shape(attention)[1]) * factor)
            names = tf.broadcast_to(starts[tf.newaxis], tf.shape(attention))
        return {"attention": attention, "steps": tf.where(real, names, "")}

    return outputs
