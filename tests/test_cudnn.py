"""GPU readiness checked without a GPU: which layers Keras would run on cuDNN, and masks cuDNN can read."""

import importlib

import keras
import numpy as np
import pytest

from seqclf.models.archs import CELLS
from seqclf.models.builders import build_classifier
from seqclf.models.cudnn import fused_kernel, kernels
from seqclf.models.layers import MissingValueMask, RightPaddedMask
from seqclf.models.seq2seq import build_seq2seq

keras_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")  # Keras' own checks: no public name


def _keras_would_fuse(layer, monkeypatch):
    """Keras' own decision for a GRU or LSTM layer, as if a GPU were there (``GRU.inner_loop`` and ``cudnn_ok``)."""
    if not isinstance(layer, (keras.layers.GRU, keras.layers.LSTM)):
        return False  # SimpleRNN and RNN(cell) have no fused path at all
    monkeypatch.setattr(keras_rnn, "_is_gpu_available", lambda: True)
    cell = layer.cell
    reset_after = cell.reset_after if isinstance(layer, keras.layers.GRU) else None
    return (layer.use_cudnn in ("auto", True) and not cell.recurrent_dropout
            and keras_rnn.cudnn_ok(cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias,
                                   reset_after=reset_after))


@pytest.mark.parametrize("name, recurrent_dropout", [(name, rate) for name, cell in CELLS.items()
                                                     for rate in ((0.0, 0.2) if cell.own_dropout else (0.0,))])
def test_every_cell_is_judged_as_keras_judges_it(name, recurrent_dropout, monkeypatch):
    layer = CELLS[name].make(4, False, 0.0, recurrent_dropout, None)
    assert fused_kernel(layer)[0] == _keras_would_fuse(layer, monkeypatch)
    assert fused_kernel(layer)[0] == (name in ("gru", "lstm") and not recurrent_dropout)


def test_other_settings_keras_refuses_are_refused_with_a_reason(monkeypatch):
    for layer, reason in ((keras.layers.LSTM(4, activation="relu"), "an activation other than tanh"),
                          (keras.layers.GRU(4, use_bias=False), "no bias"),
                          (keras.layers.GRU(4, unroll=True), "unroll=True"),
                          (keras.layers.LSTM(4, use_cudnn=False), "use_cudnn=False")):
        assert fused_kernel(layer) == (False, reason) and not _keras_would_fuse(layer, monkeypatch)


def test_the_default_text_sensor_and_seq2seq_models_run_every_recurrent_layer_on_cudnn():
    text = build_classifier("bigru", n_classes=2, units=(8,), vocab_size=50, embedding_dim=4, dropout=0.5)
    sensor = build_classifier("lstm+fcn", n_classes=3, units=(8,), n_features=2, series_length=30, dropout=0.1)
    stacked = build_classifier("bilstm:8,8", n_classes=3, units=(8,), n_features=2, task="many-to-many")
    seq2seq = build_seq2seq("bigru", source_vocab_size=30, target_vocab_size=12, units=(8,))
    assert list(kernels(text).values()) == ["cuDNN", "cuDNN"]  # both directions
    assert [name.split("/")[0] for name in kernels(text)] == ["bigru_1", "bigru_1"]
    assert kernels(sensor) == {"lstm_1": "cuDNN"}
    assert len(kernels(stacked)) == 4 and set(kernels(stacked).values()) == {"cuDNN"}
    assert set(kernels(seq2seq).values()) == {"cuDNN"} and len(kernels(seq2seq)) == 2  # the encoder's two directions
    own = kernels(build_classifier("peephole-lstm", n_classes=2, units=(8,), vocab_size=50, embedding_dim=4))
    assert own == {"peephole-lstm_1": "RNN of PeepholeLSTMCell (no fused kernel)"}


def _cudnn_reads(mask):
    """Whether Keras' cuDNN path accepts ``mask``: right-padded, no sequence without a real step."""
    return bool(keras_rnn._is_sequence_right_padded(mask)) and not bool(keras_rnn._has_fully_masked_sequence(mask))


def test_empty_texts_and_gaps_reach_the_recurrent_layers_with_a_mask_cudnn_reads():
    ids = np.array([[5, 6, 7, 0], [0, 0, 0, 0]])  # a text and an empty one
    text = build_classifier("bigru", n_classes=2, units=(4,), vocab_size=50, embedding_dim=4)
    raw = text.get_layer("embedding").compute_mask(ids)
    fixed = text.get_layer("right_padded_mask").compute_mask(None, raw)
    assert not _cudnn_reads(raw) and _cudnn_reads(fixed)
    assert fixed.numpy().tolist() == [[True, True, True, False], [True, False, False, False]]

    series = np.array([[[1.0], [np.nan], [2.0], [np.nan]], [[1.0], [2.0], [3.0], [4.0]]], "float32")  # a gap, padding
    raw = MissingValueMask().compute_mask(series)
    fixed = RightPaddedMask().compute_mask(series, raw)
    assert not _cudnn_reads(raw) and _cudnn_reads(fixed)
    assert fixed.numpy().tolist() == [[True, True, True, False], [True] * 4]


def test_a_mask_right_padded_already_passes_unchanged_and_an_empty_text_gets_an_answer():
    model = build_classifier("gru", n_classes=2, units=(4,), vocab_size=50, embedding_dim=4, pooling="mean")
    ids = np.array([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0], [0, 0, 0, 0, 0]])
    raw = model.get_layer("embedding").compute_mask(ids[:2])
    np.testing.assert_array_equal(model.get_layer("right_padded_mask").compute_mask(None, raw), raw)
    probabilities = model.predict(ids, verbose=0)
    assert np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1.0)
