"""MiniRocket's random kernels as a branch (``+rocket``): the proportions of the equations, masking, saving, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import seqclf
from seqclf.errors import ConfigError
from seqclf.explain import explain
from seqclf.models.archs import get_architecture
from seqclf.models.builders import build_classifier
from seqclf.models.kernels import KERNEL_LENGTH, RandomKernelFeatures, adapt_kernel_features, kernel_weights
from seqclf.models.seq2seq import check_encoder


def reference_outputs(series, kernel, dilation):
    """Convolution with zeros beyond both ends (``same``), in float64: ``(T, 84)`` for ``series`` ``(T, C)``."""
    length, half = len(series), KERNEL_LENGTH // 2
    padded = np.zeros((length + 2 * half * dilation, series.shape[1]))
    padded[half * dilation:half * dilation + length] = series
    return sum(padded[j * dilation:j * dilation + length] @ kernel[j] for j in range(KERNEL_LENGTH))


def test_specs_compose_the_kernels_with_the_other_branches():
    spec = get_architecture("bilstm:8+attn+mfcn+rocket")
    assert (spec.units, spec.attention, spec.convolution, spec.kernels) == ((8,), True, "mfcn", True)
    assert get_architecture("lstm+rocket").convolution is None and not get_architecture("lstm+fcn").kernels
    with pytest.raises(ConfigError, match=r"\[\+fcn\|\+mfcn\]\[\+rocket\]"):
        get_architecture("lstm+rocket+fcn")
    with pytest.raises(ConfigError, match="describes a whole series.*many-to-many"):
        build_classifier("gru+rocket", n_classes=2, n_features=1, series_length=20, task="many-to-many")
    with pytest.raises(ConfigError, match="reads float series"):
        build_classifier("gru+rocket", n_classes=2, vocab_size=30)
    with pytest.raises(ConfigError, match="leave out.*\\+rocket"):
        check_encoder(get_architecture("gru+rocket"))


@pytest.mark.parametrize("n_channels", [1, 3])
def test_features_are_the_proportions_of_the_equations_above_training_quantiles(n_channels):
    rng = np.random.default_rng(0)
    series = rng.normal(size=(5, 40, n_channels)).astype("float32")
    layer = RandomKernelFeatures(series_length=40, n_features=1000)
    layer.adapt(series)
    kernels, biases = layer.kernels.numpy(), layer.biases.numpy()
    chosen = kernels != 0
    n_read = chosen.any(axis=1).sum(axis=1)  # (dilations, 84): the channels each kernel sums
    assert n_read.min() == 1 and n_read.max() == n_channels
    np.testing.assert_array_equal(np.unique(kernels[chosen]), [-1, 2])
    np.testing.assert_array_equal(kernels.sum(axis=1), 0)  # every channel's kernel sums to 0
    np.testing.assert_array_equal(kernels[0, :, chosen[0].any(axis=0).argmax(), 0], kernel_weights()[:, 0])
    expected = []
    for index, dilation in enumerate(layer.dilations):
        outputs = [reference_outputs(s, kernels[index], dilation) for s in series]
        # the biases are quantiles of one training series' outputs at the kernels' golden-ratio levels
        assert any(np.all((biases[index] >= o.min(axis=0) - 1e-4) & (biases[index] <= o.max(axis=0) + 1e-4))
                   for o in outputs)
        expected.append(np.stack([(o[:, None, :] > biases[index]).mean(axis=0).reshape(-1) for o in outputs]))
    expected = np.concatenate(expected, axis=1)
    assert expected.shape == (5, layer.n_features_) and 0.0 < expected.mean() < 1.0
    got = np.asarray(layer(series)) * layer.spread.numpy() + layer.mean.numpy()
    assert np.abs(got - expected).max() <= 1.0 / 40 + 1e-6  # a step exactly at a bias may round either way
    assert np.mean(np.abs(got - expected) > 1e-6) < 1e-3
    np.testing.assert_allclose(layer.mean.numpy(), expected.mean(axis=0), atol=1e-3)  # standardised on training
    assert layer.spread.numpy().min() >= 0.05


def test_padding_and_missing_steps_change_nothing_and_a_model_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    series = rng.normal(size=(6, 30, 2)).astype("float32")
    series[2, 18:] = np.nan  # a shorter series
    model = build_classifier("gru:3+fcn+rocket", n_classes=3, n_features=2, series_length=30, downsample=2)
    adapt_kernel_features(model, series)
    assert model.get_layer("kernel_features").biases.numpy().any()
    assert not model.get_layer("kernel_scores").get_weights()[0].any()  # the output layer reads them from 0
    kernel_features = keras.Model(model.input, model.get_layer("kernel_features").output)
    np.testing.assert_allclose(kernel_features(series).numpy()[2], kernel_features(series[2:3, :18]).numpy()[0],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(series).numpy()[2], model(series[2:3, :18]).numpy()[0], rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "rocket.keras")
    loaded = keras.saving.load_model(tmp_path / "rocket.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(series).numpy(), model(series).numpy(), rtol=1e-5, atol=1e-6)


def test_a_fitted_classifier_adapts_the_kernels_and_exports_them(tmp_path):
    rng = np.random.default_rng(2)
    y = np.array(["flat", "wave"] * 10)
    steps = np.arange(25)
    X = [(np.sin(steps / 2.0) if label == "wave" else np.zeros(25))[:, None] + rng.normal(0, 0.3, (25, 1))
         for label in y]
    clf = seqclf.SequenceClassifier(arch="gru:4+rocket", epochs=2, batch_size=8, seed=0).fit(X, y)
    core = next(layer for layer in clf.model_.layers if isinstance(layer, keras.Model))
    kernels = core.get_layer("kernel_features")
    assert kernels.biases.numpy().any() and kernels.dilations == (1, 2)
    run = clf.save(tmp_path / "run")
    export = next((run / "export").glob("*/1"))
    signature = tf.saved_model.load(str(export)).signatures["serving_default"]
    values = np.stack(X[:4]).astype("float32")
    np.testing.assert_allclose(signature(values=tf.constant(values))["probabilities"].numpy(),
                               clf.predict_proba(list(values)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seqclf.load(run).predict_proba(list(values)), clf.predict_proba(list(values)),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="without \\+rocket"):
        explain(clf, X[:1])
