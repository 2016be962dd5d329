"""Recurrent cells by name, and the architecture spec grammar that composes them.

A spec is ``[bi[-]]CELL[:UNITS[,UNITS...]][+attn][+fcn|+mfcn][+rocket]``:

- ``bi`` or ``bi-``: read the sequence in both directions (``keras.layers.Bidirectional``);
- ``CELL``: a registered cell (``seqclf archs`` lists them);
- ``:128,64``: two stacked layers of 128 and 64 units (replaces ``--units``);
- ``+attn``: additive (Bahdanau) attention pooling over the last layer's steps;
- ``+fcn``: a convolution branch beside the recurrent layers (LSTM-FCN, Karim et al. 2018), its
  average over the steps concatenated with the recurrent vector before the softmax; ``+mfcn``:
  the same with squeeze-and-excite blocks (MLSTM-FCN), see :mod:`seqclf.models.fcn`;
- ``+rocket``: MiniRocket's fixed random dilated kernels (Dempster et al. 2021) read the float series
  beside the other branches, their proportions going to the output layer
  (:mod:`seqclf.models.kernels`; one label per float series only).

Examples: ``bigru``, ``bilstm:128,64``, ``peephole-lstm``, ``bi-cifg+attn``, ``jordan:32``,
``lstm-nig``, ``bi-lstm-fgr:32``, ``lstm:8+fcn``, ``lstm+attn+mfcn``, ``lstm+fcn+rocket``.
"""

import re
from dataclasses import dataclass
from typing import Callable

import keras

from ..errors import ConfigError
from .cells import ODYSSEY_VARIANTS, CIFGCell, JordanCell, OdysseyLSTMCell, PeepholeLSTMCell

SPEC = re.compile(r"^(?P<bi>bi-?)?(?P<cell>[a-z][a-z0-9-]*?)(?::(?P<units>[0-9,]+))?(?P<attn>\+attn)?"
                  r"(?:\+(?P<convolution>fcn|mfcn))?(?P<kernels>\+rocket)?$")
EXAMPLES = ("bigru", "bilstm:128,64", "peephole-lstm", "bi-cifg+attn", "jordan:32", "lstm:8+fcn", "lstm+attn+mfcn",
            "lstm+fcn+rocket")


@dataclass(frozen=True)
class Cell:
    """A named recurrent cell; ``make(units, return_sequences, dropout, recurrent_dropout, name)`` builds its layer."""

    name: str
    description: str
    make: Callable
    own_dropout: bool = True  # the Keras layer applies dropout and recurrent dropout itself


CELLS = {}


def register_cell(cell):
    """Add ``cell`` to the registry; names are unique."""
    if cell.name in CELLS:
        raise ValueError(f"cell {cell.name!r} is registered already")
    CELLS[cell.name] = cell
    return cell


def _keras_layer(layer_class, **fixed):
    def make(units, return_sequences, dropout, recurrent_dropout, name):
        return layer_class(units, return_sequences=return_sequences, dropout=dropout,
                           recurrent_dropout=recurrent_dropout, name=name, **fixed)
    return make


def _rnn_of(cell_class, **options):
    def make(units, return_sequences, dropout, recurrent_dropout, name):  # dropout: applied before, see ``apply``
        return keras.layers.RNN(cell_class(units, **options), return_sequences=return_sequences, name=name)
    return make


for _cell in (
    Cell("rnn", "Elman network: h_t = tanh(W x_t + U h_{t-1} + b) (keras SimpleRNN)", _keras_layer(keras.layers.SimpleRNN)),
    Cell("lstm", "long short-term memory: input, forget and output gates (keras LSTM)", _keras_layer(keras.layers.LSTM)),
    Cell("gru", "gated recurrent unit, Keras' default reset_after=True: the reset gate multiplies U h_{t-1} + b "
                "after the product (as cuDNN does)", _keras_layer(keras.layers.GRU)),
    Cell("gru-reset-before", "GRU as the lectures write it: h~_t = tanh(W x_t + U (r_t * h_{t-1}) + b) "
                             "(keras GRU, reset_after=False)", _keras_layer(keras.layers.GRU, reset_after=False)),
    Cell("jordan", "Jordan network: a_t = tanh(W_x x_t + W_y y_{t-1} + b), y_t = tanh(W_ay a_t + b_y); "
                   "the previous output is fed back", _rnn_of(JordanCell), own_dropout=False),
    Cell("peephole-lstm", "LSTM whose gates also read the cell state (Gers & Schmidhuber; Greff et al.'s vanilla "
                          "V): i, f = s(W x_t + U h_{t-1} + v * c_{t-1} + b), c~_t = tanh(W_c x_t + U_c h_{t-1} + "
                          "b_c), c_t = f * c_{t-1} + i * c~_t, o = s(W_o x_t + U_o h_{t-1} + v_o * c_t + b_o), h_t = "
                          "o * tanh(c_t)", _rnn_of(PeepholeLSTMCell),
         own_dropout=False),
    Cell("cifg", "LSTM with coupled input and forget gates, f_t = 1 - i_t (Greff et al.; without peepholes)",
         _rnn_of(CIFGCell), own_dropout=False),
):
    register_cell(_cell)
for _variant, _change in ODYSSEY_VARIANTS.items():  # peephole-lstm is the vanilla one
    if _variant != "v":
        register_cell(Cell(f"lstm-{_variant}", f"peephole-lstm with {_change} (Greff et al.)",
                           _rnn_of(OdysseyLSTMCell, variant=_variant), own_dropout=False))


@dataclass(frozen=True)
class Architecture:
    """A parsed spec: the cell, one or both directions, units (``None``: from ``--units``), attention pooling, and
    a convolution branch beside the recurrent layers (``None``, ``"fcn"`` or ``"mfcn"``), and MiniRocket's random
    kernels as a further branch (``kernels``)."""

    spec: str
    cell: Cell
    bidirectional: bool
    units: tuple = None
    attention: bool = False
    convolution: str = None
    kernels: bool = False

    @property
    def name(self):
        """A name for the model's layers: ``bigru``, ``cifg``, ..."""
        return ("bi" if self.bidirectional else "") + self.cell.name

    def apply(self, x, units, return_sequences, dropout=0.0, recurrent_dropout=0.0, name=None):
        """``x`` through one recurrent layer of this design (wrapped in ``Bidirectional`` when it is).

        Cells without Keras' own dropout get the same kind: one mask per sequence and input
        feature, shared by all steps (``SpatialDropout1D`` on the layer's input).
        """
        if not self.cell.own_dropout:
            if recurrent_dropout:
                raise ConfigError(f"--recurrent-dropout does not apply to the {self.cell.name} cell; use --dropout")
            if dropout:
                x = keras.layers.SpatialDropout1D(dropout, name=f"{name}_input_dropout")(x)
        layer = self.cell.make(units, return_sequences, dropout, recurrent_dropout, None if self.bidirectional else name)
        return (keras.layers.Bidirectional(layer, name=name) if self.bidirectional else layer)(x)


def get_architecture(spec):
    """Parse an architecture ``spec`` (see the module docstring).

    Examples
    --------
    >>> get_architecture("bigru").bidirectional
    True
    >>> a = get_architecture("bi-cifg:32,16+attn")
    >>> a.cell.name, a.units, a.attention
    ('cifg', (32, 16), True)
    >>> get_architecture("lstm:8+mfcn").convolution
    'mfcn'

    """
    match = SPEC.match(str(spec).strip().lower())
    if match is None or match["cell"] not in CELLS:
        cell = match["cell"] if match else spec
        raise ConfigError(f"unknown architecture {spec!r} (cell {cell!r}); a spec is "
                          f"[bi-]CELL[:UNITS,...][+attn][+fcn|+mfcn][+rocket] with CELL one of {', '.join(CELLS)}; "
                          f"for example {', '.join(EXAMPLES)}")
    units = None
    if match["units"]:
        try:
            units = tuple(int(u) for u in match["units"].split(","))
        except ValueError:
            units = ()
        if not units or min(units) < 1:
            raise ConfigError(f"the units in {spec!r} must be positive integers separated by commas, like bigru:128,64")
    return Architecture(spec=str(spec), cell=CELLS[match["cell"]], bidirectional=bool(match["bi"]), units=units,
                        attention=bool(match["attn"]), convolution=match["convolution"],
                        kernels=bool(match["kernels"]))
