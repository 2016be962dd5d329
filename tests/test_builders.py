import keras
import numpy as np
import pytest

from seqclf.errors import ConfigError
from seqclf.models.archs import CELLS, get_architecture
from seqclf.models.builders import build_classifier, parse_units
from seqclf.models.layers import SequencePooling

RNG = np.random.default_rng(0)
X = RNG.integers(1, 50, size=(32, 7))
Y = RNG.integers(0, 3, size=32)


@pytest.mark.parametrize("arch", sorted(CELLS) + ["bigru", "bi-jordan", "bi-peephole-lstm"])
def test_every_architecture_builds_fits_and_round_trips(arch, tmp_path):
    model = build_classifier(arch, n_classes=3, units=(6,), vocab_size=50, embedding_dim=4, dropout=0.1)
    assert model.output_shape == (None, 3)
    recurrent = [layer for layer in model.layers if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))]
    assert len(recurrent) == 1
    assert isinstance(recurrent[0], keras.layers.Bidirectional) == arch.startswith("bi")
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-5, atol=1e-6)


def test_stacked_layers_return_sequences_except_the_last():
    model = build_classifier("lstm", n_classes=2, units=(8, 6, 4), vocab_size=20, embedding_dim=3)
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert [layer.units for layer in layers] == [8, 6, 4]
    assert [layer.return_sequences for layer in layers] == [True, True, False]


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("arch", ["gru", "bilstm"])
def test_padding_never_changes_the_prediction(pooling, arch):
    model = build_classifier(arch, n_classes=2, units=(5,), pooling=pooling, vocab_size=30, embedding_dim=4)
    short = np.array([[3, 7, 9, 0]])
    long = np.array([[3, 7, 9, 0, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(model(short).numpy(), model(long).numpy(), rtol=1e-5, atol=1e-6)


def test_float_features_input_with_masking():
    model = build_classifier("gru", n_classes=2, units=(4,), n_features=3)
    assert model.input_shape == (None, None, 3)
    x = RNG.normal(size=(1, 5, 3)).astype("float32")
    padded = np.concatenate([x, np.full((1, 3, 3), np.nan, "float32")], axis=1)  # NaN steps are padding
    np.testing.assert_allclose(model(x).numpy(), model(padded).numpy(), rtol=1e-5, atol=1e-6)


def test_missing_value_mask_round_trips_in_a_saved_model(tmp_path):
    model = build_classifier("bilstm", n_classes=3, units=(4,), n_features=2, task="many-to-many")
    assert model.output_shape == (None, None, 3)
    x = RNG.normal(size=(2, 5, 2)).astype("float32")
    x[0, 3:] = np.nan
    x[1, 1, 0] = np.nan
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert np.isfinite(model(x).numpy()).all()


def test_sequence_pooling_skips_masked_steps_and_round_trips():
    x = np.array([[[1.0, -4.0], [3.0, -2.0], [100.0, 100.0]]], "float32")
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(SequencePooling("mean")(x, mask=mask).numpy(), [[2.0, -3.0]])
    np.testing.assert_allclose(SequencePooling("max")(x, mask=mask).numpy(), [[3.0, -2.0]])
    layer = SequencePooling("max", name="p")
    clone = SequencePooling.from_config(layer.get_config())
    assert (clone.mode, clone.name) == ("max", "p")
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).mode == "max"


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown architecture 'transformer'.*CELL one of rnn, lstm, gru, "
                                          r"gru-reset-before, jordan, peephole-lstm, cifg, lstm-nig, lstm-nfg, lstm-nog, "
                                          r"lstm-niaf, lstm-noaf, lstm-np, lstm-fgr; for example bigru"):
        get_architecture("transformer")


@pytest.mark.parametrize("kwargs, name", [
    ({"units": ()}, "units"), ({"units": (0,)}, "units"), ({"dropout": 1.5}, "dropout"),
    ({"recurrent_dropout": -0.1}, "recurrent_dropout"), ({"pooling": "self-attention"}, "pooling"), ({"n_classes": 1}, "n_classes"), ({"task": "one-to-many"}, "task"),
])
def test_builder_rejects_bad_settings(kwargs, name):
    settings = {"n_classes": 2, "vocab_size": 10, **kwargs}
    with pytest.raises(ConfigError, match=f"'{name}' parameter"):
        build_classifier("gru", **settings)


def test_units_parsing():
    assert parse_units("128,64") == (128, 64)
    with pytest.raises(ConfigError, match="--units must be positive integers"):
        parse_units("128,x")


def test_additive_attention_matches_the_equations_and_honours_the_mask(tmp_path):
    from seqclf.models.layers import AdditivePooling

    rng = np.random.default_rng(3)
    h = rng.normal(size=(2, 6, 5)).astype("float32")
    mask = np.array([[True] * 6, [True] * 4 + [False] * 2])
    layer = AdditivePooling(units=3)
    layer.build(h.shape)
    W, b, v = (rng.normal(size=w.shape).astype("float32") for w in layer.get_weights())
    layer.set_weights([W, b, v])
    # e_t = v^T tanh(W h_t + b); alpha = softmax over the unmasked steps; context = sum_t alpha_t h_t
    e = np.tanh(h @ W + b) @ v[:, 0]
    e = np.where(mask, e, -np.inf)
    alpha = np.exp(e - e.max(axis=1, keepdims=True))
    alpha /= alpha.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(layer.attention(h, mask).numpy(), alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(h, mask=mask).numpy(), (alpha[..., None] * h).sum(axis=1), rtol=1e-5, atol=1e-6)
    changed = h.copy()
    changed[1, 4:] = 100.0  # masked steps: any values, same result
    np.testing.assert_allclose(layer(changed, mask=mask).numpy()[1], layer(h, mask=mask).numpy()[1], rtol=1e-5)
    model = build_classifier("bigru", n_classes=2, units=(4,), vocab_size=50, embedding_dim=3, pooling="attention")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(X[:4], verbose=0), model.predict(X[:4], verbose=0), rtol=1e-5, atol=1e-6)
