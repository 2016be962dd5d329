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
