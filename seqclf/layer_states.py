"""Recurrent layers re-run one step at a time from their own cells (same weights): the hidden and cell states and
the gate activations at every step, recomputed from the layer's weights where Keras does not return them, and a
unit held at 0 for an ablation. What ``seqclf cells`` (:mod:`seqclf.units`) reads."""

from dataclasses import dataclass

import keras
import numpy as np

from .errors import ConfigError
from .models.cells import CIFGCell, OdysseyLSTMCell


@dataclass
class LayerStates:
    """One direction of one recurrent layer, at every step: ``states`` ``{"h": (n, T, units), "c": ...}`` and
    ``gates`` ``{"input": (n, T, units), ...}`` (none for cells without gates)."""

    name: str
    states: dict
    gates: dict


def gate_activations(cell, x, states):
    """The gate activations of ``cell`` at one step from its input ``x`` and ``states`` (``{}`` without gates)."""
    if isinstance(cell, (OdysseyLSTMCell, CIFGCell)):
        return cell.gate_activations(x, states)
    h = states[0]
    if isinstance(cell, keras.layers.LSTMCell):
        z = keras.ops.matmul(x, cell.kernel) + keras.ops.matmul(h, cell.recurrent_kernel)
        z = z + cell.bias if cell.use_bias else z
        i, f, _, o = keras.ops.split(z, 4, axis=-1)
        return {"input": cell.recurrent_activation(i), "forget": cell.recurrent_activation(f),
                "output": cell.recurrent_activation(o)}
    if isinstance(cell, keras.layers.GRUCell):
        from_x, from_h = keras.ops.matmul(x, cell.kernel), keras.ops.matmul(h, cell.recurrent_kernel)
        if cell.use_bias:
            bias = cell.bias if not cell.reset_after else cell.bias[0]
            from_x = from_x + bias
            from_h = from_h + cell.bias[1] if cell.reset_after else from_h
        (xz, xr, _), (hz, hr, _) = keras.ops.split(from_x, 3, axis=-1), keras.ops.split(from_h, 3, axis=-1)
        return {"update": cell.recurrent_activation(xz + hz), "reset": cell.recurrent_activation(xr + hr)}
    return {}


def layer_states(layer, x, mask, ablate=None):
    """Re-run the recurrent ``layer`` (an RNN or a ``Bidirectional`` one) on ``x`` with ``mask`` one step at a time;
    returns ``([LayerStates], output)``, one per direction, and the layer's output as it would give it.

    ``ablate``: ``(direction index, state, unit)`` held at 0 at every step (state ``"h"`` or ``"c"``).
    """
    x = keras.ops.convert_to_numpy(x).astype("float32")
    mask = np.ones(x.shape[:2], bool) if mask is None else keras.ops.convert_to_numpy(mask).astype(bool)
    bidirectional = isinstance(layer, keras.layers.Bidirectional)
    directions = ([("forward", layer.forward_layer), ("backward", layer.backward_layer)] if bidirectional
                  else [("", layer)])
    recorded, outputs = [], []
    for d, (direction, rnn) in enumerate(directions):
        held = ablate[1:] if ablate is not None and ablate[0] == d else None
        states, final = _run_cell(rnn, x, mask, held)
        recorded.append(LayerStates(f"{layer.name} {direction}".strip(), *states))
        outputs.append(states[0]["h"] if rnn.return_sequences else final)
    output = np.concatenate(outputs, axis=-1) if bidirectional else outputs[0]
    if bidirectional and layer.merge_mode != "concat":
        raise ConfigError(f"{layer.name} merges its directions by {layer.merge_mode}; seqclf cells reads concat only")
    return recorded, output


def _run_cell(rnn, x, mask, held):
    """The states and gates of ``rnn``'s cell at every step (masked steps keep the previous states), and the output
    after the last step read."""
    cell, (n, T, _) = rnn.cell, x.shape
    sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    states = [np.zeros((n, size), "float32") for size in sizes]
    lstm = isinstance(cell, (keras.layers.LSTMCell, OdysseyLSTMCell, CIFGCell))
    record = {"h": np.zeros((n, T, cell.units), "float32")}
    if lstm:
        record["c"] = np.zeros((n, T, cell.units), "float32")
    gates, output = {}, np.zeros((n, cell.units), "float32")
    for t in (reversed(range(T)) if rnn.go_backwards else range(T)):
        for name, value in gate_activations(cell, x[:, t], states).items():
            gates.setdefault(name, np.zeros((n, T, cell.units), "float32"))[:, t] = keras.ops.convert_to_numpy(value)
        h, new = cell(x[:, t], states, training=False)
        new = [np.array(s) for s in (new if isinstance(new, (list, tuple)) else [new])]
        h = np.array(h)
        if held is not None:  # the unit held at 0: in the output and the states the next step reads
            state, unit = held  # a cell state at 0 gives h = o * tanh(0) = 0 as well
            for values in ((h, new[0]) if state == "h" else (h, new[0], new[1])):
                values[:, unit] = 0.0
        real = mask[:, t:t + 1]
        states = [np.where(real, s, old) for s, old in zip(new, states)]
        output = np.where(real, h, output)
        record["h"][:, t] = output
        if lstm:
            record["c"][:, t] = states[1]
    return (record, gates), output
