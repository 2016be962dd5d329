"""The convolution branch of LSTM-FCN / MLSTM-FCN: masking, squeeze-and-excite, the spec grammar, export and serving."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from seqclf.cli import main
from seqclf.errors import ConfigError
from seqclf.models.archs import get_architecture
from seqclf.models.builders import build_classifier
from seqclf.models.fcn import ConvolutionBranch, DimensionShuffle, SqueezeExcite

from .conftest import ROOT
from .test_serving import Server

BASIC_MOTIONS = ROOT / "datasets" / "basic_motions_TRAIN.ts"


def test_specs_compose_the_branch_with_cells_directions_stacks_and_attention():
    spec = get_architecture("bilstm:16,8+attn+mfcn")
    assert (spec.cell.name, spec.bidirectional, spec.units, spec.attention, spec.convolution) == (
        "lstm", True, (16, 8), True, "mfcn")
    assert get_architecture("gru+fcn").convolution == "fcn" and get_architecture("gru").convolution is None
    with pytest.raises(ConfigError, match="unknown architecture 'gru\\+fcn\\+attn'.*\\[\\+attn\\]\\[\\+fcn\\|\\+mfcn\\]"):
        get_architecture("gru+fcn+attn")


@pytest.mark.parametrize("per_step", [False, True])
def test_padding_changes_nothing_in_training_or_inference(per_step):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 10, 2)).astype("float32")
    mask = np.ones((3, 10), bool)
    mask[1, 6:] = mask[2, 4:] = False
    branch = ConvolutionBranch(filters=(6, 5, 4), kernels=(4, 3, 2), squeeze_excite=True, per_step=per_step)
    for training in (False, True):  # in training batch normalisation's statistics count real steps only
        garbage = np.where(mask[..., None], x, 1e3).astype("float32")  # padded steps may hold anything
        out, clean = (branch(v, mask=mask, training=training).numpy() for v in (garbage, np.where(mask[..., None], x, 0)))
        np.testing.assert_allclose(out, clean, rtol=1e-5, atol=1e-5)
    alone = branch(x[2:, :4], mask=mask[2:, :4]).numpy()
    together = branch(x, mask=mask).numpy()[2:]
    np.testing.assert_allclose(together[:, :4] if per_step else together, alone, rtol=1e-5, atol=1e-5)
    if per_step:
        assert together.shape == (1, 10, 4) and not np.any(together[0, 4:])


def test_squeeze_excite_is_the_gate_of_the_equations():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 32)).astype("float32")
    real = np.ones((2, 5, 1), "float32")
    real[1, 3:] = 0.0
    layer = SqueezeExcite(ratio=16)
    out = layer(x, real).numpy()
    (w1, b1), (w2, b2) = layer.squeeze.get_weights(), layer.excite.get_weights()
    mean = (x * real).sum(axis=1) / real.sum(axis=1)
    gate = 1.0 / (1.0 + np.exp(-(np.maximum(mean @ w1 + b1, 0.0) @ w2 + b2)))
    assert w1.shape == (32, 2)
    np.testing.assert_allclose(out, x * gate[:, None, :], rtol=1e-5, atol=1e-6)


def test_the_shuffled_reading_ignores_batch_padding_and_round_trips_in_safe_mode(tmp_path):
    model = build_classifier("gru:3+mfcn", n_classes=2, n_features=2, series_length=8, downsample=2)
    assert [layer.name for layer in model.layers if isinstance(layer, DimensionShuffle)] == ["dimension_shuffle"]
    assert model.get_layer("gru_1").input.shape[1:] == (2, 8)  # two channels: two steps of 8 values
    rng = np.random.default_rng(4)
    short = rng.normal(size=(1, 5, 2)).astype("float32")
    batch = np.full((2, 11, 2), np.nan, "float32")
    batch[0, :5], batch[1] = short[0], rng.normal(size=(11, 2))
    np.testing.assert_allclose(model(batch).numpy()[0], model(short).numpy()[0], rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "shuffled.keras")
    loaded = keras.saving.load_model(tmp_path / "shuffled.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(batch).numpy(), model(batch).numpy(), rtol=1e-5, atol=1e-6)


def test_a_branch_round_trips_in_safe_mode(tmp_path):
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, ConvolutionBranch(filters=(4, 4), kernels=(3, 2), squeeze_excite=True)(
        keras.layers.Masking(0.0)(inputs)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.default_rng(2).normal(size=(2, 7, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_an_fcn_run_exports_explains_and_serves(tmp_path):
    run = tmp_path / "run"
    fitted = CliRunner().invoke(main, ["fit", str(BASIC_MOTIONS), "--arch", "gru:4+fcn", "--epochs", "1",
                                       "--batch-size", "8", "--out", str(run), "--verbose", "0"])
    assert fitted.exit_code == 0, fitted.output
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["arch"] == "gru:4+fcn" and config["model"]["n_parameters"] > 260_000
    explained = CliRunner().invoke(main, ["explain", str(run), str(BASIC_MOTIONS), "--row", "1"])
    assert explained.exit_code == 2 and "dimension-shuffled" in explained.output, explained.output
    series = np.random.default_rng(3).normal(size=(1, 40, 6)).astype("float32")
    signature = tf.saved_model.load(str(run / "export" / "basic_motions_TRAIN" / "1")).signatures["serving_default"]
    expected = signature(values=tf.constant(series))["probabilities"].numpy()
    server = Server(run, grpc=True)
    try:
        server.assert_grpc_equals_rest("basic_motions_TRAIN", series.tolist(), {"values": series})
        answer = server.post("/v1/models/basic_motions_TRAIN:predict", {"instances": series.tolist()}).json()
        np.testing.assert_allclose(answer["predictions"][0]["probabilities"], expected[0], rtol=1e-5, atol=1e-6)
    finally:
        assert server.stop() == 0


def test_sensor_series_default_to_lstm_fcn_rocket_and_longer_series_are_cut_to_the_training_length():
    import seqclf
    from seqclf import tasks

    rng = np.random.default_rng(5)
    y = np.array(["still", "moving"] * 8)
    X = [rng.normal(size=(int(rng.integers(6, 12)), 2)) * (3.0 if label == "moving" else 0.3) for label in y]
    clf = seqclf.SequenceClassifier(units=(4,), epochs=1, batch_size=8).fit(X, y)
    assert clf.arch_ == "lstm+fcn+rocket" and tasks.get_task("many-to-one").arch_for("text") == "bigru"
    core = next(layer for layer in clf.model_.layers if isinstance(layer, keras.Model))
    assert core.get_layer("dimension_shuffle").length == max(len(x) for x in X)
    longer = np.concatenate([X[0], rng.normal(size=(30, 2))])[None].astype("float32")
    assert clf.predict_proba(longer).shape == (1, 2)  # the recurrent branch reads its first steps, the convolutions all
    shuffle = core.get_layer("dimension_shuffle")
    np.testing.assert_array_equal(shuffle(longer).numpy(), shuffle(longer[:, :shuffle.length]).numpy())
