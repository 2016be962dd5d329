"""Series augmentation in training: each batch sees its series cropped and stretched, rescaled and jittered."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="seqclf")
class SeriesAugmentation(keras.layers.Layer):
    """In training only, a random window of each series stretched to its length, then scaled and jittered.

    Input ``(n, T, C)``, normalised, NaN at missing steps (padding). ``crop``: the window keeps a share
    drawn from ``[crop, 1]`` of the series' real steps, read by linear interpolation at its length
    (Le Guennec et al. 2016's window slicing); ``scale``: each channel multiplied by a draw of
    N(1, scale); ``jitter``: noise N(0, jitter) added to each value. Outside training the input passes unchanged.
    """

    def __init__(self, crop=0.9, scale=0.1, jitter=0.03, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.crop, self.scale, self.jitter, self.seed = crop, scale, jitter, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        x = inputs
        shape = ops.shape(x)
        n, steps = shape[0], shape[1]
        real = ops.any(ops.logical_not(ops.isnan(x)), axis=-1)  # (n, T)
        t = ops.cast(ops.arange(steps), x.dtype)[None, :]  # (1, T)
        length = ops.max(ops.where(real, t + 1.0, 0.0), axis=1, keepdims=True)  # (n, 1) steps up to the last real one
        if self.crop < 1.0:
            share = keras.random.uniform((n, 1), self.crop, 1.0, seed=self.generator)
            start = keras.random.uniform((n, 1), 0.0, 1.0, seed=self.generator) * (1.0 - share) * ops.maximum(length - 1.0, 0.0)
            position = start + t * share
            low = ops.floor(position)
            weight = ops.expand_dims(position - low, -1)
            top = ops.maximum(length - 1.0, 0.0)
            low_i = ops.cast(ops.minimum(low, top), "int32")
            high_i = ops.cast(ops.minimum(low + 1.0, top), "int32")
            below = ops.take_along_axis(x, ops.expand_dims(low_i, -1), axis=1)
            above = ops.take_along_axis(x, ops.expand_dims(high_i, -1), axis=1)
            stretched = below * (1.0 - weight) + above * weight
            x = ops.where(ops.expand_dims(t < length, -1), stretched, x)
        if self.scale:
            x = x * (1.0 + self.scale * keras.random.normal((n, 1, shape[2]), seed=self.generator))
        if self.jitter:
            x = x + self.jitter * keras.random.normal(shape, seed=self.generator)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "crop": self.crop, "scale": self.scale, "jitter": self.jitter,
                "seed": self.seed}
