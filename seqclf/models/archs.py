"""The registry of recurrent architectures, by name.

Each entry names the Keras recurrent layer it uses and whether it reads the sequence in both
directions. ``seqclf archs`` prints this table.
"""

from dataclasses import dataclass

import keras

from ..errors import ConfigError


@dataclass(frozen=True)
class Architecture:
    """A named recurrent design: the layer class and whether it is bidirectional."""

    name: str
    layer: type
    bidirectional: bool
    description: str

    def recurrent_layer(self, units, return_sequences, dropout=0.0, recurrent_dropout=0.0, name=None):
        """One recurrent layer of this design (wrapped in ``Bidirectional`` when it is)."""
        layer = self.layer(
            units, return_sequences=return_sequences, dropout=dropout, recurrent_dropout=recurrent_dropout,
            name=None if self.bidirectional else name,
        )
        return keras.layers.Bidirectional(layer, name=name) if self.bidirectional else layer


ARCHITECTURES = {}


def register_architecture(architecture):
    """Add ``architecture`` to the registry; names are unique."""
    if architecture.name in ARCHITECTURES:
        raise ValueError(f"architecture {architecture.name!r} is registered already")
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def get_architecture(name):
    """Return the registered architecture called ``name``.

    Examples
    --------
    >>> get_architecture("bigru").bidirectional
    True
    """
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


for _architecture in (
    Architecture("rnn", keras.layers.SimpleRNN, False, "Elman network: h_t = tanh(W x_t + U h_{t-1} + b)"),
    Architecture("lstm", keras.layers.LSTM, False, "long short-term memory: input, forget and output gates"),
    Architecture("gru", keras.layers.GRU, False, "gated recurrent unit: update and reset gates"),
    Architecture("birnn", keras.layers.SimpleRNN, True, "Elman network reading forwards and backwards"),
    Architecture("bilstm", keras.layers.LSTM, True, "LSTM reading forwards and backwards"),
    Architecture("bigru", keras.layers.GRU, True, "GRU reading forwards and backwards (the default)"),
):
    register_architecture(_architecture)
