"""Custom layers, registered so that saved models load with Keras' safe mode on."""

import keras
from keras import ops

POOLING_MODES = ("mean", "max")


@keras.saving.register_keras_serializable(package="seqclf")
class SequencePooling(keras.layers.Layer):
    """Mean or max over the time steps of ``(n_samples, n_timesteps, n_features)``, skipping masked steps.

    Keras' ``GlobalMaxPooling1D`` ignores the mask, so padded steps could win the maximum;
    this layer never lets them.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0], [5.0], [9.0]]])
    >>> mask = np.array([[True, True, False]])
    >>> float(SequencePooling("max")(x, mask=mask)[0, 0])
    5.0
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"The 'mode' parameter of SequencePooling must be one of {POOLING_MODES}. Got {mode!r} instead.")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1) if self.mode == "mean" else ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        if self.mode == "mean":
            return ops.sum(inputs * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), 1.0)
        lowest = ops.min(inputs, axis=1, keepdims=True)
        return ops.max(ops.where(keep > 0, inputs, lowest), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="seqclf")
class MissingValueMask(keras.layers.Layer):
    """Mask the steps of float input ``(n_samples, n_timesteps, n_features)`` that hold no value.

    NaN marks a missing value. A step whose features are all NaN (padding after a shorter
    series, or a gap) is masked; a NaN beside real values becomes 0, which after the model's
    ``Normalization`` is the channel's training mean. The recurrent layers then skip the padding
    and read a gap as such a step of means (:class:`RightPaddedMask`).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, np.nan], [np.nan, np.nan]]], dtype="float32")
    >>> layer = MissingValueMask()
    >>> layer(x).numpy().tolist(), layer.compute_mask(x).numpy().tolist()
    ([[[1.0, 0.0], [0.0, 0.0]]], [[True, False]])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.where(ops.isnan(inputs), ops.zeros_like(inputs), inputs)

    def compute_mask(self, inputs, mask=None):
        return ops.any(ops.logical_not(ops.isnan(inputs)), axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="seqclf")
class RightPaddedMask(keras.layers.Layer):
    """Pass the input on with a mask cuDNN can read: every step up to each sequence's last real one, and the first.

    On a GPU, Keras runs GRU and LSTM layers on cuDNN's fused kernel, which reads a mask only as
    each sequence's length, and raises on a masked step before a real one (a gap inside a sensor
    series) or on a sequence without a real step (an empty text) instead of falling back
    (:mod:`seqclf.models.cudnn`). Here a gap becomes a step the recurrent layers read (its values
    are 0: a channel's training mean after the model's normalisation) and an empty sequence reads
    its first (padding) step; a mask that is already right-padded passes unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[True, False, True, False], [False, False, False, False]])
    >>> RightPaddedMask().compute_mask(np.zeros((2, 4, 1)), mask).numpy().tolist()
    [[True, True, True, False], [True, False, False, False]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        return inputs

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        real = ops.cast(mask, "int32")
        before_the_last = ops.flip(ops.cumsum(ops.flip(real, axis=1), axis=1), axis=1) > 0
        first = ops.equal(ops.cumsum(ops.ones_like(real), axis=1), 1)
        return ops.logical_or(before_the_last, first)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="seqclf")
class StepAveraging(keras.layers.Layer):
    """Average each run of ``factor`` steps of ``(n_samples, n_timesteps, n_features)`` into one, skipping NaN.

    Long series become ``ceil(n_timesteps / factor)`` steps, which recurrent layers learn from far
    more easily. A block with no value stays NaN (still padding for :class:`MissingValueMask`).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [5.0], [np.nan], [np.nan]]], dtype="float32")
    >>> StepAveraging(2)(x).numpy()[0, :, 0].tolist()
    [2.0, 5.0, nan]
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"The 'factor' parameter of StepAveraging must be an integer >= 1. Got {factor!r} instead.")
        self.factor = factor

    def call(self, inputs):
        steps, features = ops.shape(inputs)[1], ops.shape(inputs)[2]
        blocks = (steps + self.factor - 1) // self.factor
        padded = ops.pad(inputs, [[0, 0], [0, blocks * self.factor - steps], [0, 0]], constant_values=float("nan"))
        grouped = ops.reshape(padded, (-1, blocks, self.factor, features))
        present = ops.logical_not(ops.isnan(grouped))
        total = ops.sum(ops.where(present, grouped, ops.zeros_like(grouped)), axis=2)
        count = ops.sum(ops.cast(present, inputs.dtype), axis=2)
        return ops.where(count > 0, total / ops.maximum(count, 1.0), ops.full_like(total, float("nan")))

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else -(-input_shape[1] // self.factor)
        return (input_shape[0], steps, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="seqclf")
class AdditivePooling(keras.layers.Layer):
    """Additive (Bahdanau) attention over the steps of ``(n_samples, n_timesteps, n_features)``.

    e_t = v^T tanh(W h_t + b); alpha = softmax of e over the unmasked steps; the output is
    sum_t alpha_t h_t. ``attention(inputs, mask)`` gives the weights alpha ``(n_samples, n_timesteps)``.

    Examples
    --------
    >>> import numpy as np
    >>> layer = AdditivePooling(units=4)
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    >>> weights = layer.attention(x, mask=np.array([[True] * 5, [True, True, False, False, False]]))
    >>> np.round(weights.numpy().sum(axis=1), 5).tolist(), float(weights[1, 2:].numpy().max())
    ([1.0, 1.0], 0.0)
    """

    def __init__(self, units=64, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"The 'units' parameter of AdditivePooling must be an integer >= 1. Got {units!r} instead.")
        self.units = units
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(features, self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.score = self.add_weight(name="score", shape=(self.units, 1), initializer="glorot_uniform")

    def attention(self, inputs, mask=None):
        """The weight alpha_t of every step; masked steps get 0."""
        if not self.built:
            self.build(inputs.shape)
        energy = ops.squeeze(ops.matmul(ops.tanh(ops.matmul(inputs, self.kernel) + self.bias), self.score), -1)
        if mask is not None:
            energy = ops.where(mask, energy, ops.full_like(energy, -1e9))
        weights = ops.softmax(energy, axis=-1)
        return weights if mask is None else weights * ops.cast(mask, weights.dtype)

    def call(self, inputs, mask=None):
        return ops.sum(inputs * ops.expand_dims(self.attention(inputs, mask), -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


PRICE_ROLES = ("open", "high", "low", "close", "adj_close", "volume", "price")
PRICE_FEATURES = ("returns", "range", "gap", "volume", "volatility")


@keras.saving.register_keras_serializable(package="seqclf")
class PriceFeatures(keras.layers.Layer):
    """Causal features of raw price windows ``(n_samples, n_timesteps, len(columns))``.

    ``columns`` names the role of each input column (``open``, ``high``, ``low``, ``close``,
    ``adj_close``, ``volume`` or ``price``). Each feature at step t reads steps up to t only;
    a feature that needs earlier steps than the window holds is NaN there (the model's
    ``MissingValueMask`` handles it), and so is one computed from a non-positive price.

    - ``returns``: log return of the price (``adj_close``, else ``close``, else ``price``), log(p_t / p_{t-1})
    - ``range``: log(high_t / low_t)
    - ``gap``: log(open_t / close_{t-1})
    - ``volume``: log(1 + volume_t) - log(1 + volume_{t-1})
    - ``volatility``: standard deviation of the last ``volatility_steps`` log returns

    Examples
    --------
    >>> import numpy as np
    >>> prices = np.array([[[100.0], [110.0], [99.0]]], dtype="float32")
    >>> PriceFeatures(["close"], ["returns"])(prices).numpy()[0, :, 0].astype("float64").round(4).tolist()
    [nan, 0.0953, -0.1054]
    """

    def __init__(self, columns, features, volatility_steps=10, **kwargs):
        super().__init__(**kwargs)
        unknown = sorted(set(columns) - set(PRICE_ROLES)) + sorted(set(features) - set(PRICE_FEATURES))
        if unknown:
            raise ValueError(f"PriceFeatures knows the columns {PRICE_ROLES} and features {PRICE_FEATURES}. "
                             f"Got {unknown!r} instead.")
        self.columns = list(columns)
        self.features = list(features)
        self.volatility_steps = int(volatility_steps)

    def call(self, prices):
        prices = ops.cast(prices, "float32")
        column = {role: prices[:, :, i] for i, role in enumerate(self.columns)}
        nan = ops.full_like(prices[:, :1, 0], float("nan"))

        def log(x):
            return ops.where(x > 0, ops.log(ops.maximum(x, 1e-30)), float("nan"))

        def change(x, earlier=None):  # x_t - earlier_{t-1}, NaN at the first step
            earlier = x if earlier is None else earlier
            return x - ops.concatenate([nan, earlier[:, :-1]], axis=1)

        price = next(column[role] for role in ("adj_close", "close", "price") if role in column)
        returns = change(log(price))
        computed = {}
        for name in self.features:
            if name == "returns":
                computed[name] = returns
            elif name == "range":
                computed[name] = log(column["high"]) - log(column["low"])
            elif name == "gap":
                computed[name] = change(log(column["open"]), log(column["close"]))
            elif name == "volume":
                volume = ops.where(column["volume"] >= 0, ops.log1p(ops.maximum(column["volume"], 0.0)), float("nan"))
                computed[name] = change(volume)
            else:
                lagged = [returns] + [ops.concatenate([ops.repeat(nan, k, axis=1), returns[:, :-k]], axis=1)
                                      for k in range(1, self.volatility_steps)]
                computed[name] = ops.std(ops.stack(lagged, axis=-1), axis=-1)
        return ops.stack([computed[name] for name in self.features], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], len(self.features))

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "features": self.features,
                "volatility_steps": self.volatility_steps}


@keras.saving.register_keras_serializable(package="seqclf")
class CharacterEncoder(keras.layers.Layer):
    """One vector per word from its characters: embedding, convolution over the characters, maximum.

    Input: character ids ``(n_samples, n_words, n_chars)``, 0 for padding. Output:
    ``(n_samples, n_words, filters)``; a word with no characters is padding and is masked, so
    concatenated with a masked word embedding the padding stays masked. Unseen words get
    features from their spelling (a convolutional character encoder as in Ma and Hovy, 2016).

    Examples
    --------
    >>> import numpy as np
    >>> encoder = CharacterEncoder(vocab_size=10, filters=4)
    >>> ids = np.array([[[2, 3, 0], [0, 0, 0]]])
    >>> tuple(encoder(ids).shape), encoder.compute_mask(ids).numpy().tolist()
    ((1, 2, 4), [[True, False]])
    """

    def __init__(self, vocab_size, embedding_dim=16, filters=32, width=3, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.filters, self.width = vocab_size, embedding_dim, filters, width
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="char_embedding")
        self.convolution = keras.layers.Conv1D(filters, width, padding="same", activation="tanh", name="char_convolution")

    def build(self, input_shape):
        n_chars = input_shape[-1]
        self.embedding.build((None, n_chars))
        self.convolution.build((None, n_chars, self.embedding_dim))

    def call(self, char_ids):
        shape = ops.shape(char_ids)
        flat = ops.reshape(char_ids, (-1, shape[-1]))
        features = self.convolution(self.embedding(flat))
        real = ops.expand_dims(flat > 0, -1)
        strongest = ops.max(ops.where(real, features, -2.0), axis=1)  # tanh > -2: padding characters never win
        strongest = ops.where(ops.any(real, axis=1), strongest, 0.0)
        return ops.reshape(strongest, (shape[0], shape[1], self.filters))

    def compute_mask(self, char_ids, mask=None):
        return ops.any(char_ids > 0, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "filters": self.filters, "width": self.width}
