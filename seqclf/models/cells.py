"""Recurrent cells of the lectures that Keras does not ship: Jordan, LSTM with peepholes and the other variants of
"LSTM: A Search Space Odyssey", CIFG.

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


# The variants of Greff et al. (2017), "LSTM: A Search Space Odyssey", each one change to the vanilla cell V.
ODYSSEY_VARIANTS = {
    "v": "vanilla: input, forget and output gates with peepholes",
    "nig": "no input gate: i_t = 1",
    "nfg": "no forget gate: f_t = 1",
    "nog": "no output gate: o_t = 1",
    "niaf": "no input activation function: c~_t = W_c x_t + U_c h_{t-1} + b_c (g(x) = x)",
    "noaf": "no output activation function: h_t = o_t * c_t (h(x) = x)",
    "np": "no peepholes: v_i = v_f = v_o = 0",
    "fgr": "full gate recurrence: each gate also reads the previous step's i, f and o through its own matrices "
           "(+ R_ix i_{t-1} + R_fx f_{t-1} + R_ox o_{t-1} for gate x; nine more units x units matrices)",
}
_GATE_NAMES = {"i": "input", "f": "forget", "o": "output"}


@keras.saving.register_keras_serializable(package="seqclf")
class OdysseyLSTMCell(_Cell):
    """The LSTM of Greff et al. (2017), "LSTM: A Search Space Odyssey", and its one-change variants.

    The vanilla cell (``variant="v"``, Gers & Schmidhuber's peephole LSTM):

    i_t = s(W_i x_t + U_i h_{t-1} + v_i * c_{t-1} + b_i)
    f_t = s(W_f x_t + U_f h_{t-1} + v_f * c_{t-1} + b_f)
    c~_t = g(W_c x_t + U_c h_{t-1} + b_c),  g = tanh
    c_t = f_t * c_{t-1} + i_t * c~_t
    o_t = s(W_o x_t + U_o h_{t-1} + v_o * c_t + b_o)
    h_t = o_t * h(c_t),  h = tanh

    ``variant`` is one of :data:`ODYSSEY_VARIANTS`: ``nig``, ``nfg``, ``nog`` fix a gate at 1 (its weights
    W, U, b and v are not there), ``niaf`` and ``noaf`` make g or h the identity, ``np`` drops the peepholes,
    ``fgr`` adds to each gate's sum R_ix i_{t-1} + R_fx f_{t-1} + R_ox o_{t-1} (``gate_recurrent_kernel``,
    ``(3 units, 3 units)``: rows the previous i, f, o, columns the gates i, f, o; initialised to zero, as the
    peepholes are, so training starts from V). The coupled-gate variant is :class:`CIFGCell`.
    ``kernel``, ``recurrent_kernel`` and ``bias`` hold the blocks of i, f, c, o that the variant has, in that
    order; the peepholes are ``peephole_input``, ``peephole_forget``, ``peephole_output``; b_f starts at one.
    """

    def __init__(self, units, variant="v", **kwargs):
        super().__init__(units, **kwargs)
        if variant not in ODYSSEY_VARIANTS:
            raise ValueError(f"The 'variant' parameter of {type(self).__name__} must be one of "
                             f"{', '.join(ODYSSEY_VARIANTS)}. Got {variant!r} instead.")
        self.variant = variant

    @property
    def gates(self):
        """The gates this variant computes, of i, f, o."""
        return tuple(gate for gate in "ifo" if self.variant != f"n{gate}g")

    @property
    def blocks(self):
        """The blocks of ``kernel``, ``recurrent_kernel`` and ``bias``: of i, f, c, o, those the variant has."""
        return tuple(block for block in "ifco" if block == "c" or block in self.gates)

    @property
    def state_size(self):
        return [self.units] * (5 if self.variant == "fgr" else 2)  # h, c (and the previous i, f, o)

    def build(self, input_shape):
        forget = self.blocks.index("f") if "f" in self.blocks else None
        self._weights(input_shape[-1], len(self.blocks),
                      "zeros" if forget is None else _forget_bias_one(len(self.blocks), forget))
        for gate in self.gates if self.variant != "np" else ():
            setattr(self, f"peephole_{_GATE_NAMES[gate]}", self.add_weight(
                shape=(self.units,), name=f"peephole_{_GATE_NAMES[gate]}", initializer="zeros"))
        if self.variant == "fgr":
            self.gate_recurrent_kernel = self.add_weight(shape=(3 * self.units, 3 * self.units),
                                                         name="gate_recurrent_kernel", initializer="zeros")

    def call(self, inputs, states, training=False):
        h, c, gates = self._step(inputs, states)
        return h, [h, c] + ([gates["i"], gates["f"], gates["o"]] if self.variant == "fgr" else [])

    def gate_activations(self, inputs, states):
        """The gates this variant has at one step, ``{"input": i_t, "forget": f_t, "output": o_t}`` (``seqclf cells``)."""
        return {_GATE_NAMES[name]: value for name, value in self._step(inputs, states)[2].items()}

    def _step(self, inputs, states):
        """``h_t``, ``c_t`` and the gates the variant has (``{"i": i_t, ...}``) from ``x_t`` and the states."""
        h_prev, c_prev = states[:2]
        z = dict(zip(self.blocks, self._gates(inputs, h_prev, len(self.blocks))))
        if self.variant == "fgr":
            recurrence = ops.split(ops.matmul(ops.concatenate(states[2:], axis=-1), self.gate_recurrent_kernel), 3, -1)
            z.update({gate: z[gate] + part for gate, part in zip("ifo", recurrence)})

        def gate(name, cell):
            if name not in self.gates:
                return 1.0
            peephole = 0.0 if self.variant == "np" else getattr(self, f"peephole_{_GATE_NAMES[name]}") * cell
            return SIGMOID(z[name] + peephole)

        i, f = gate("i", c_prev), gate("f", c_prev)
        c = f * c_prev + i * (z["c"] if self.variant == "niaf" else ops.tanh(z["c"]))
        o = gate("o", c)
        h = o * (c if self.variant == "noaf" else ops.tanh(c))
        return h, c, {name: value for name, value in zip("ifo", (i, f, o)) if name in self.gates}

    def get_config(self):
        return {**super().get_config(), "variant": self.variant}


@keras.saving.register_keras_serializable(package="seqclf")
class PeepholeLSTMCell(OdysseyLSTMCell):
    """LSTM whose gates also read the cell state through diagonal weights (Gers & Schmidhuber 2000): the vanilla
    cell of Greff et al., :class:`OdysseyLSTMCell` with ``variant="v"`` (its equations are there)."""

    def __init__(self, units, **kwargs):
        kwargs.pop("variant", None)
        super().__init__(units, variant="v", **kwargs)


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
        h, c, _ = self._step(inputs, states)
        return h, [h, c]

    def gate_activations(self, inputs, states):
        """The gates at one step, ``{"input": i_t, "forget": 1 - i_t, "output": o_t}`` (``seqclf cells``)."""
        i, o = self._step(inputs, states)[2]
        return {"input": i, "forget": 1.0 - i, "output": o}

    def _step(self, inputs, states):
        h_prev, c_prev = states
        zi, zc, zo = self._gates(inputs, h_prev, 3)
        i, o = SIGMOID(zi), SIGMOID(zo)
        c = (1.0 - i) * c_prev + i * ops.tanh(zc)
        return o * ops.tanh(c), c, (i, o)
