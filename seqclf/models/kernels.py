"""Random dilated kernels beside the recurrent layers (``+rocket``): MiniRocket's features as a branch of the network.

Dempster, Schmidt and Webb (2021), "MiniRocket: a very fast (almost) deterministic transform for
time series classification", convolve a series with 84 fixed kernels of 9 weights (-1 everywhere
but 2 at three positions: every choice of three of the nine, so each sums to 0), each at dilations
spaced exponentially from 1 up to where the kernel spans the series, and describe every output by
the proportion of its steps above a bias (PPV, "proportion of positive values"); the biases are
quantiles of the outputs for a training series. A linear classifier reads the ~10,000 proportions.

Here the same kernels, dilations and proportions are a layer of the model, so the export still
takes the raw series:

- a multivariate series: each dilation gives every kernel its own random subset of the channels
  (of 1 up to 9 of them, as MiniRocket does), summed;
- every kernel pads with zeros ("same"; MiniRocket alternates it with no padding); padded steps are
  zeros before the convolution, exactly what "same" padding puts after a shorter series, and a
  proportion counts real steps only, so padding never changes a feature;
- the proportions leave standardised by their training mean and spread (the spread floored at
  :data:`MIN_SPREAD`), and the network's output layer reads them through weights that start at 0
  (:func:`seqclf.models.builders.build_classifier`): trained by gradient descent beside the
  recurrent layers, that is a logistic regression on them, where MiniRocket fits a ridge classifier.

Nothing in the layer is trained: :meth:`RandomKernelFeatures.adapt` sets the biases and the
standardisation from the training series once, before training.
"""

import itertools

import keras
import numpy as np
from keras import ops

KERNEL_LENGTH = 9
KERNEL_WEIGHTS = (-1.0, 2.0)  # every weight, and the three chosen ones
N_KERNELS = 84  # choices of 3 positions among 9
MAX_DILATIONS = 32
N_FEATURES = 10_000  # about; rounded to a whole number of biases per kernel and dilation
MAX_CHANNELS = 9
#: A proportion's spread in the training series is floored here before standardising: a proportion that hardly
#: varies in training would otherwise be multiplied a hundredfold and dominate the output layer on new series.
MIN_SPREAD = 0.05
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # quantiles frac(k * GOLDEN) spread evenly over (0, 1) whatever their number


def kernel_weights():
    """The 84 kernels, ``(9, 84)``: -1 everywhere but 2 at three positions.

    Examples
    --------
    >>> w = kernel_weights()
    >>> w.shape, float(abs(w.sum(axis=0)).max())
    ((9, 84), 0.0)
    """
    weights = np.full((KERNEL_LENGTH, N_KERNELS), KERNEL_WEIGHTS[0], dtype="float32")
    for k, positions in enumerate(itertools.combinations(range(KERNEL_LENGTH), 3)):
        weights[list(positions), k] = KERNEL_WEIGHTS[1]
    return weights


def dilations(series_length):
    """Up to 32 dilations spaced exponentially from 1 to where a kernel spans ``series_length`` steps.

    Examples
    --------
    >>> dilations(9), dilations(100)
    ((1,), (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12))
    """
    largest = max(0.0, float(np.log2((series_length - 1) / (KERNEL_LENGTH - 1))))
    return tuple(int(d) for d in np.unique(np.floor(2 ** np.linspace(0, largest, MAX_DILATIONS)).astype(int)))


def channel_choice(n_channels, n_dilations, rng):
    """Which channels each kernel sums at each dilation: 0/1 ``(n_dilations, n_channels, 84)``, 1 to 9 per kernel."""
    chosen = np.zeros((n_dilations, n_channels, N_KERNELS), dtype="float32")
    most = min(n_channels, MAX_CHANNELS)
    for d in range(n_dilations):
        for k in range(N_KERNELS):
            count = int(2 ** rng.uniform(0, np.log2(most + 1)))
            chosen[d, rng.choice(n_channels, size=min(count, most), replace=False), k] = 1.0
    return chosen


@keras.saving.register_keras_serializable(package="seqclf")
class RandomKernelFeatures(keras.layers.Layer):
    """MiniRocket's proportions of a float series ``(n, T, channels)`` over its real steps: ``(n, n_features_)``.

    ``series_length`` (the longest training series) sets the dilations; ``seed`` the channel subsets
    and which training series gives each dilation's biases. Call :meth:`adapt` with the training
    series before use.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(4, 30, 1)).astype("float32")
    >>> layer = RandomKernelFeatures(series_length=30, n_features=500)
    >>> layer.adapt(x)
    >>> features = layer(x)
    >>> tuple(features.shape), round(float(np.abs(np.asarray(features).mean(axis=0)).max()), 4)
    ((4, 504), 0.0)
    """

    def __init__(self, series_length, n_features=N_FEATURES, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.series_length, self.n_features, self.seed = int(series_length), int(n_features), int(seed)
        self.dilations = dilations(self.series_length)
        self.per_kernel = max(1, round(self.n_features / (N_KERNELS * len(self.dilations))))
        self.n_features_ = self.per_kernel * N_KERNELS * len(self.dilations)
        self.supports_masking = True

    def build(self, input_shape):
        n_channels, n_dilations = input_shape[-1], len(self.dilations)
        self.kernels = self.add_weight(shape=(n_dilations, KERNEL_LENGTH, n_channels, N_KERNELS), initializer="zeros",
                                       trainable=False, name="kernels")
        chosen = channel_choice(n_channels, n_dilations, np.random.default_rng(self.seed))
        self.kernels.assign(kernel_weights()[None, :, None, :] * chosen[:, None, :, :])
        self.biases = self.add_weight(shape=(n_dilations, self.per_kernel, N_KERNELS), initializer="zeros",
                                      trainable=False, name="biases")
        self.mean = self.add_weight(shape=(self.n_features_,), initializer="zeros", trainable=False, name="mean")
        self.spread = self.add_weight(shape=(self.n_features_,), initializer="ones", trainable=False, name="spread")

    def convolve(self, values, index):
        """The 84 kernels' outputs at dilation ``self.dilations[index]``, ``(n, T, 84)``; zeros beyond the ends."""
        return ops.conv(values, self.kernels[index], strides=1, padding="same", dilation_rate=self.dilations[index])

    def proportions(self, values, real):
        """The unstandardised proportions ``(n, n_features_)`` of ``values`` (zeros at padded steps)."""
        count = ops.maximum(ops.sum(real, axis=1), 1.0)  # (n, 1)
        features = []
        for index in range(len(self.dilations)):
            outputs = self.convolve(values, index)
            for level in range(self.per_kernel):  # one bias at a time: (n, T, 84) in memory, not per_kernel times it
                above = ops.cast(outputs > self.biases[index, level], values.dtype)
                features.append(ops.sum(above * real, axis=1) / count)  # (n, 84)
        return ops.concatenate(features, axis=-1)

    def call(self, inputs, mask=None):
        real = ops.ones_like(inputs[:, :, :1]) if mask is None else ops.cast(mask, inputs.dtype)[:, :, None]
        return (self.proportions(inputs * real, real) - self.mean) / self.spread

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_features_)

    def adapt(self, series, batch_size=64):
        """Biases and standardisation from the training ``series`` ``(n, T, channels)``: NaN marks missing values,
        a step of NaN only is padding (as :class:`~seqclf.models.layers.MissingValueMask` reads them)."""
        series = np.asarray(series, dtype="float32")
        if not self.built:
            self.build(series.shape)
        real = ~np.isnan(series).all(axis=-1)
        values = np.nan_to_num(series)
        rng = np.random.default_rng(self.seed)
        quantiles = ((np.arange(self.per_kernel)[:, None] * N_KERNELS + np.arange(N_KERNELS) + 1) * GOLDEN) % 1
        biases = np.zeros((len(self.dilations), self.per_kernel, N_KERNELS), dtype="float32")
        for index in range(len(self.dilations)):
            example = int(rng.integers(len(values)))
            outputs = ops.convert_to_numpy(self.convolve(values[example:example + 1, real[example]], index))[0]
            for k in range(N_KERNELS):
                biases[index, :, k] = np.quantile(outputs[:, k], quantiles[:, k])
        self.biases.assign(biases)
        shares = np.concatenate([ops.convert_to_numpy(self.proportions(values[s:s + batch_size],
                                                                       real[s:s + batch_size, :, None].astype("float32")))
                                 for s in range(0, len(values), batch_size)])
        self.mean.assign(shares.mean(axis=0))
        self.spread.assign(np.maximum(shares.std(axis=0), MIN_SPREAD))

    def get_config(self):
        return {**super().get_config(), "series_length": self.series_length, "n_features": self.n_features,
                "seed": self.seed}


def adapt_kernel_features(model, x_train):
    """Adapt every :class:`RandomKernelFeatures` layer of ``model`` to the training inputs ``x_train`` (float series)."""
    for layer in model.layers:
        if isinstance(layer, RandomKernelFeatures):
            layer.adapt(x_train)
