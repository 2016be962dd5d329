"""Which recurrent layers Keras runs on cuDNN's fused kernel when a GPU is there, known without one.

Keras (3.15, TensorFlow backend: ``GRU.inner_loop``, ``LSTM.inner_loop`` and ``cudnn_ok``) takes
the fused kernel for a ``GRU`` or ``LSTM`` layer when ``use_cudnn`` is ``"auto"`` (the default) or
True, it has no recurrent dropout, its activations are tanh and sigmoid, it has biases and is not
unrolled, and, for a GRU, ``reset_after`` is True. Every other layer runs the generic loop:
``SimpleRNN`` and the ``RNN`` of a cell of our own (Jordan, peephole, CIFG, the Odyssey variants).

cuDNN reads a mask only as each sequence's length, so with the fused kernel Keras raises
(it does not fall back) on a mask with a gap or a sequence without a real step;
:class:`~seqclf.models.layers.RightPaddedMask` before the recurrent layers rules both out.
"""

import keras
import tensorflow as tf

FUSED = (keras.layers.GRU, keras.layers.LSTM)
TANH = (keras.activations.tanh, keras.ops.tanh, tf.tanh)  # the functions Keras' own check accepts
SIGMOID = (keras.activations.sigmoid, keras.ops.sigmoid, tf.sigmoid)


def fused_kernel(layer):
    """``(True, "")`` if Keras runs ``layer`` (a recurrent layer) on cuDNN on a GPU, else ``(False, why not)``.

    Examples
    --------
    >>> fused_kernel(keras.layers.GRU(4))
    (True, '')
    >>> fused_kernel(keras.layers.GRU(4, recurrent_dropout=0.1))
    (False, 'recurrent dropout')
    """
    if not isinstance(layer, FUSED):
        return False, f"{type(layer).__name__} of {type(getattr(layer, 'cell', layer)).__name__} (no fused kernel)"
    cell = layer.cell
    reasons = [
        (layer.use_cudnn not in ("auto", True), "use_cudnn=False"),
        (bool(cell.recurrent_dropout), "recurrent dropout"),
        (cell.activation not in TANH, "an activation other than tanh"),
        (cell.recurrent_activation not in SIGMOID, "a recurrent activation other than sigmoid"),
        (not cell.use_bias, "no bias"),
        (layer.unroll, "unroll=True"),
        (isinstance(layer, keras.layers.GRU) and not cell.reset_after, "reset_after=False"),
    ]
    found = [why for failed, why in reasons if failed]
    return not found, ", ".join(found)


def kernels(model):
    """``{layer name: "cuDNN" or why the generic loop}`` for every recurrent layer of ``model`` (nested models and
    both directions of ``Bidirectional`` included, named ``outer/forward_...``).

    Examples
    --------
    >>> inputs = keras.Input((None, 3))
    >>> model = keras.Model(inputs, keras.layers.Bidirectional(keras.layers.LSTM(4, name="lstm"), name="bi")(inputs))
    >>> kernels(model)
    {'bi/forward_lstm': 'cuDNN', 'bi/backward_lstm': 'cuDNN'}
    """
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update({f"{layer.name}/{name}": kind for name, kind in kernels(layer).items()})
        elif isinstance(layer, keras.layers.Bidirectional):
            for direction in (layer.forward_layer, layer.backward_layer):
                found[f"{layer.name}/{direction.name}"] = _kind(direction)
        elif isinstance(layer, keras.layers.RNN):
            found[layer.name] = _kind(layer)
    return found


def _kind(layer):
    fused, why = fused_kernel(layer)
    return "cuDNN" if fused else why
