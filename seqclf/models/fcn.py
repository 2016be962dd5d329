"""The fully convolutional partner of a recurrent layer: LSTM-FCN and MLSTM-FCN's convolution branch, and the
"dimension shuffle" through which their recurrent layer reads a series.

Karim, Majumdar, Darabi and Chen (2018), "LSTM fully convolutional networks for time series
classification", put three convolution blocks beside the recurrent layer: Conv1D with 128, 256
and 128 filters of widths 8, 5 and 3, each followed by batch normalisation and ReLU, then a
global average over the steps; its vector is concatenated with the recurrent one before the
softmax. MLSTM-FCN (Karim et al. 2019) adds a squeeze-and-excite block (Hu et al. 2018) after
the first two: s = sigmoid(W_2 relu(W_1 mean_t(x_t))), x_t <- s * x_t, with W_1 reducing the
filters 16-fold.

Here the branch respects the mask of padded (and all-missing) steps: their values are zeroed
before every convolution, exactly the zeros that "same" padding puts after a series' end, so a
real step's output never depends on how far the batch was padded; batch normalisation takes
its statistics over real steps only, and the averages (the pooling and the squeeze) count real
steps only. For a per-step task it returns every step ("same" padding: each step reads the
kernel's width of steps on both sides, as a bidirectional recurrent layer reads the whole series).

The papers' recurrent branch does not read the series step by step: a "dimension shuffle"
transposes it, so a univariate series of N steps is one step of N values and a series of C
channels is C steps (:class:`DimensionShuffle`). That needs a fixed N: the training series'
longest length, shorter series padded with zeros (after normalisation, the channel's mean) and
longer ones cut there.
"""

import keras
from keras import ops

FILTERS = (128, 256, 128)
KERNELS = (8, 5, 3)
SQUEEZE_RATIO = 16
#: The batch normalisation's moving averages forget at this rate per update. Keras' 0.99 averages about the
#: last 100 updates: on a set of 45 series (6 updates an epoch) that is 17 epochs behind the weights, and
#: GunPoint's test accuracy stayed at chance for 50 epochs while its training accuracy rose; 0.9 follows
#: within two epochs.
NORM_MOMENTUM = 0.9


def _masked_mean(x, real):
    """The mean over the real steps of ``x`` ``(n, T, f)``; ``real`` ``(n, T, 1)`` holds 1 at real steps."""
    return ops.sum(x * real, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="seqclf")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excite over steps: each filter scaled by a gate computed from its mean over the real steps.

    Examples
    --------
    >>> import numpy as np
    >>> layer = SqueezeExcite(ratio=2)
    >>> tuple(layer(np.ones((1, 3, 4), "float32"), np.ones((1, 3, 1), "float32")).shape)
    (1, 3, 4)
    """

    def __init__(self, ratio=SQUEEZE_RATIO, **kwargs):
        super().__init__(**kwargs)
        self.ratio = ratio

    def build(self, inputs_shape, real_shape=None):
        filters = inputs_shape[-1]
        self.squeeze = keras.layers.Dense(max(1, filters // self.ratio), activation="relu", name="squeeze")
        self.excite = keras.layers.Dense(filters, activation="sigmoid", name="excite")
        self.squeeze.build((None, filters))
        self.excite.build((None, max(1, filters // self.ratio)))

    def call(self, inputs, real):
        gate = self.excite(self.squeeze(_masked_mean(inputs, real)))
        return inputs * ops.expand_dims(gate, 1)

    def compute_output_shape(self, inputs_shape, real_shape=None):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio}


@keras.saving.register_keras_serializable(package="seqclf")
class ConvolutionBranch(keras.layers.Layer):
    """Masked convolution blocks (Conv1D, batch normalisation, ReLU), then a masked global average over the steps.

    ``squeeze_excite`` adds MLSTM-FCN's squeeze-and-excite after every block but the last;
    ``per_step`` returns ``(n, T, filters[-1])`` (the mask passed on) instead of the average
    ``(n, filters[-1])``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(2, 12, 3)).astype("float32")
    >>> mask = np.array([[True] * 12, [True] * 7 + [False] * 5])
    >>> branch = ConvolutionBranch(filters=(4, 4), kernels=(3, 3))
    >>> pooled = branch(x, mask=mask)
    >>> shorter = branch(x[1:, :7], mask=mask[1:, :7])
    >>> bool(np.allclose(pooled[1], shorter[0], atol=1e-6)), tuple(pooled.shape)
    (True, (2, 4))
    """

    def __init__(self, filters=FILTERS, kernels=KERNELS, squeeze_excite=False, per_step=False, **kwargs):
        super().__init__(**kwargs)
        if len(filters) != len(kernels) or not filters:
            raise ValueError(f"ConvolutionBranch needs one kernel width per block. Got filters {filters!r} and "
                             f"kernels {kernels!r}.")
        self.filters, self.kernels = tuple(filters), tuple(kernels)
        self.squeeze_excite, self.per_step = squeeze_excite, per_step
        self.supports_masking = True
        self.convolutions = [keras.layers.Conv1D(f, k, padding="same", name=f"conv_{i + 1}")
                             for i, (f, k) in enumerate(zip(self.filters, self.kernels))]
        self.norms = [keras.layers.BatchNormalization(momentum=NORM_MOMENTUM, name=f"norm_{i + 1}") for i in range(len(self.filters))]
        self.excites = ([SqueezeExcite(name=f"squeeze_excite_{i + 1}") for i in range(len(self.filters) - 1)]
                        if squeeze_excite else [])

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, (convolution, norm) in enumerate(zip(self.convolutions, self.norms)):
            convolution.build(shape)
            shape = shape[:-1] + (self.filters[i],)
            norm.build(shape)
            if i < len(self.excites):
                self.excites[i].build(shape)

    def call(self, inputs, mask=None, training=False):
        real = (ops.ones_like(inputs[..., :1]) if mask is None
                else ops.expand_dims(ops.cast(mask, inputs.dtype), -1))
        x = inputs * real
        for i, (convolution, norm) in enumerate(zip(self.convolutions, self.norms)):
            x = ops.relu(norm(convolution(x), training=training, mask=mask)) * real
            if i < len(self.excites):
                x = self.excites[i](x, real)
        return x if self.per_step else _masked_mean(x, real)

    def compute_mask(self, inputs, mask=None):
        return mask if self.per_step else None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters[-1],) if self.per_step else (input_shape[0], self.filters[-1])

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "kernels": list(self.kernels),
                "squeeze_excite": self.squeeze_excite, "per_step": self.per_step}


@keras.saving.register_keras_serializable(package="seqclf")
class DimensionShuffle(keras.layers.Layer):
    """``(n, T, C)`` to ``(n, C, length)``: each channel one step, its values the step's features.

    Missing values and padding become 0; steps past ``length`` are cut, shorter series padded.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 4.0], [2.0, np.nan], [3.0, 6.0]]], dtype="float32")
    >>> DimensionShuffle(4)(x).numpy().tolist()
    [[[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 6.0, 0.0]]]
    """

    def __init__(self, length, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"The 'length' parameter of DimensionShuffle must be an integer >= 1. Got {length!r} instead.")
        self.length = length

    def call(self, inputs):
        values = ops.where(ops.isnan(inputs), ops.zeros_like(inputs), inputs)
        fitted = ops.pad(values, [[0, 0], [0, self.length], [0, 0]])[:, :self.length]
        return ops.transpose(fitted, (0, 2, 1))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], self.length)

    def get_config(self):
        return {**super().get_config(), "length": self.length}
