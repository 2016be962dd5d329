"""Recurrent cells of the lectures that Keras does not ship: Jordan, LSTM with peepholes, CIFG.

Each is a registered Keras cell for ``keras.layers.RNN`` (which handles masking, stacking and
``Bidirectional``), built exactly from the equations in its docstring; s is the logistic
sigmoid, * the elementwise product. Keras' own ``SimpleRNN`` (Elman), ``LSTM`` and ``GRU``
cover the rest.
"""

import keras
from keras import ops

SIGMOID = keras.activations.sigmoid


class _Cell(keras.layers.Layer):
    """Shared parts: ``units``, Keras' usual initialisers, and the input and recurrent weights."""

    def __init__(self, units, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"The 'units' parameter of {type(self).__name__} must be a positive integer. "
                             f"Got {units!r} instead.")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)

    @property
    def output_size(self):
        return self.units

    def _weights(self, input_dim, n_blocks, bias_initializer="zeros"):
        """``kernel (input_dim, n * units)``, ``recurrent_kernel (units, n * units)``, ``bias (n * units)``."""
        self.kernel = self.add_weight(shape=(input_dim, n_blocks * self.units), name="kernel",
                                      initializer=self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(shape=(self.units, n_blocks * self.units), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)
        self.bias = self.add_weight(shape=(n_blocks * self.units,), name="bias", initializer=bias_initializer)

    def _gates(self, inputs, recurrent, n_blocks):
        """W x_t + U r + b, split into ``n_blocks`` blocks of ``units``."""
        z = ops.matmul(inputs, self.kernel) + ops.matmul(recurrent, self.recurrent_kernel) + self.bias
        return ops.split(z, n_blocks, axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer)}


def _forget_bias_one(n_blocks, forget_block):
    """A bias initialiser: zeros, except ones for the forget gate (Jozefowicz et al. 2015)."""

    def initializer(shape, dtype=None):
        units = shape[0] // n_blocks
        blocks = [ops.ones((units,), dtype) if i == forget_block else ops.zeros((units,), dtype)
                  for i in range(n_blocks)]
        return ops.concatenate(blocks)

    return initializer


@keras.saving.register_keras_serializable(package="seqclf")
class JordanCell(_Cell):
    """Jordan network: the recurrence feeds back the previous *output*, not the hidden state.

    a_t = g1(W_x x_t + W_y y_{t-1} + b_a),  y_t = g2(W_ay a_t + b_y),  y_0 = 0.

    The state and the output are y_t (``units`` wide); g1 and g2 default to tanh.
    Weights: ``kernel`` = W_x, ``recurrent_kernel`` = W_y, ``bias`` = b_a, ``output_kernel`` =
    W_ay, ``output_bias`` = b_y.
    """

    def __init__(self, units, activation="tanh", output_activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.activation = keras.activations.get(activation)
        self.output_activation = keras.activations.get(output_activation)

    @property
    def state_size(self):
        return self.units

    def build(self, input_shape):
        self._weights(input_shape[-1], 1)
        self.output_kernel = self.add_weight(shape=(self.units, self.units), name="output_kernel",
                                             initializer=self.kernel_initializer)
        self.output_bias = self.add_weight(shape=(self.units,), name="output_bias", initializer="zeros")

    def call(self, inputs, states, training=False):
        (a,) = self._gates(inputs, states[0], 1)
        y = self.output_activation(ops.matmul(self.activation(a), self.output_kernel) + self.output_bias)
        return y, [y]

    def get_config(self):
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation),
                "output_activation": keras.activations.serialize(self.output_activation)}


@keras.saving.register_keras_serializable(package="seqclf")
class PeepholeLSTMCell(_Cell):
    """LSTM whose gates also read the cell state through diagonal weights (Gers & Schmidhuber 2000).

    i_t = s(W_i x_t + U_i h_{t-1} + v_i * c_{t-1} + b_i)
    f_t = s(W_f x_t + U_f h_{t-1} + v_f * c_{t-1} + b_f)
    c~_t = tanh(W_c x_t + U_c h_{t-1} + b_c)
    c_t = f_t * c_{t-1} + i_t * c~_t
    o_t = s(W_o x_t + U_o h_{t-1} + v_o * c_t + b_o)
    h_t = o_t * tanh(c_t)

    ``kernel``, ``recurrent_kernel`` and ``bias`` hold the blocks i, f, c, o in that order; the
    peepholes v_i, v_f, v_o are ``peephole_input``, ``peephole_forget``, ``peephole_output``
    (initialised to zero, so training starts from a plain LSTM); b_f starts at one.
    """

    @property
    def state_size(self):
        return [self.units, self.units]

    def build(self, input_shape):
        self._weights(input_shape[-1], 4, _forget_bias_one(4, 1))
        for gate in ("input", "forget", "output"):
            setattr(self, f"peephole_{gate}", self.add_weight(shape=(self.units,), name=f"peephole_{gate}",
                                                              initializer="zeros"))

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        zi, zf, zc, zo = self._gates(inputs, h_prev, 4)
        i = SIGMOID(zi + self.peephole_input * c_prev)
        f = SIGMOID(zf + self.peephole_forget * c_prev)
        c = f * c_prev + i * ops.tanh(zc)
        o = SIGMOID(zo + self.peephole_output * c)
        h = o * ops.tanh(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="seqclf")
class CIFGCell(_Cell):
    """LSTM with coupled input and forget gates (Greff et al. 2017, "LSTM: A Search Space Odyssey").

    i_t = s(W_i x_t + U_i h_{t-1} + b_i),  f_t = 1 - i_t
    c~_t = tanh(W_c x_t + U_c h_{t-1} + b_c),  c_t = f_t * c_{t-1} + i_t * c~_t
    o_t = s(W_o x_t + U_o h_{t-1} + b_o),  h_t = o_t * tanh(c_t)

    A quarter fewer recurrent weights than an LSTM; ``kernel``, ``recurrent_kernel`` and
    ``bias`` hold the blocks i, c, o in that order.
    """

    @property
    def state_size(self):
        return [self.units, self.units]

    def build(self, input_shape):
        self._weights(input_shape[-1], 3)

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        zi, zc, zo = self._gates(inputs, h_prev, 3)
        i = SIGMOID(zi)
        c = (1.0 - i) * c_prev + i * ops.tanh(zc)
        h = SIGMOID(zo) * ops.tanh(c)
        return h, [h, c]
