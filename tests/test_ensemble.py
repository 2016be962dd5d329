"""Ensembles inside one model: members averaged, each trained on its own loss, exported and reloaded as one."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import seqclf
from seqclf.cli import main
from seqclf.errors import ConfigError
from seqclf.explain import preprocessed
from seqclf.models.builders import build_classifier
from seqclf.models.ensemble import EnsembleAverage, MemberLoss, ensemble_accuracy, members, training_view

from .test_sensor_cli import ts_slice


def test_the_output_is_the_members_mean_and_the_view_trains_the_same_weights():
    model = build_classifier("gru", n_classes=3, units=(4,), n_features=2, ensemble=3)
    view = training_view(model)
    x = np.random.default_rng(0).normal(size=(5, 7, 2)).astype("float32")
    stacked = view(x).numpy()
    assert members(model) == 3 and stacked.shape == (5, 3, 3) and model.output_shape == (None, 3)
    np.testing.assert_allclose(model(x).numpy(), stacked.mean(axis=1), rtol=1e-6)
    assert not np.allclose(stacked[:, 0], stacked[:, 1])  # the members start from different weights
    assert {id(v) for v in view.weights} == {id(v) for v in model.weights}
    names = {layer.name for layer in model.layers}
    assert {"gru_1", "probabilities", "member_2_gru_1", "member_3_probabilities"} <= names
    assert members(build_classifier("gru", n_classes=3, units=(4,), n_features=2)) == 1


def test_each_member_is_scored_on_its_own_loss_and_accuracy_on_the_average():
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[[0.9, 0.1], [0.2, 0.8]],  # the first example: members disagree, the mean says class 0
                  [[0.3, 0.7], [0.6, 0.4]]], "float32")  # the second: the mean says class 1 (0.55)
    smoothing = 0.1
    targets = y * (1 - smoothing) + smoothing / 2
    own = -(targets[:, None, :] * np.log(p)).sum(axis=-1).mean()
    loss = MemberLoss(keras.losses.CategoricalCrossentropy(label_smoothing=smoothing))
    assert float(loss(y, p)) == pytest.approx(own, rel=1e-5)
    average = -(targets * np.log(p.mean(axis=1))).sum(axis=-1).mean()
    assert abs(own - average) > 0.05  # not the loss of the average, which would let members lean on each other
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ensemble_accuracy(y, p)), [1.0, 1.0])
    restored = MemberLoss.from_config(loss.get_config())
    assert float(restored(y, p)) == pytest.approx(own, rel=1e-5)


def test_an_ensemble_run_records_its_members_exports_and_reloads_as_one_model(tmp_path):
    train = ts_slice(tmp_path / "bm_TRAIN.ts", 3)
    run = tmp_path / "run"
    fitted = CliRunner().invoke(main, ["fit", str(train), "--arch", "gru:4", "--ensemble", "2", "--epochs", "1",
                                       "--batch-size", "4", "--out", str(run), "--verbose", "0"])
    assert fitted.exit_code == 0, fitted.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["ensemble"] == 2 and config["settings"]["ensemble"] == 2
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"accuracy", "val_accuracy", "loss", "val_loss"} <= set(header)  # the average's accuracy, the members' loss
    clf = seqclf.load(run)
    assert clf.ensemble_ == 2
    core = next(layer for layer in clf.model_.layers if isinstance(layer, keras.Model))
    assert any(isinstance(layer, EnsembleAverage) for layer in core.layers)
    series = np.random.default_rng(1).normal(size=(2, 30, 6)).astype("float32")
    signature = tf.saved_model.load(str(run / "export" / "bm_TRAIN" / "1")).signatures["serving_default"]
    np.testing.assert_allclose(signature(values=tf.constant(series))["probabilities"].numpy(),
                               clf.predict_proba(list(series)), rtol=1e-5, atol=1e-6)


def test_looks_inside_an_ensemble_follow_its_first_member():
    rng = np.random.default_rng(2)
    y = np.array(["still", "moving"] * 6)
    X = [rng.normal(size=(int(rng.integers(5, 9)), 2)) * (3.0 if label == "moving" else 0.3) for label in y]
    clf = seqclf.SequenceClassifier(arch="gru:4+attn", ensemble=2, epochs=1, batch_size=4).fit(X, y)
    weights = clf.attention_weights(X[:3])
    assert [len(w) for w in weights] == [len(x) for x in X[:3]]
    core = next(layer for layer in clf.model_.layers if isinstance(layer, keras.Model))
    first = core.get_layer("attention_pooling")
    encoded = preprocessed(clf.model_, core, X[0][None].astype("float32"))  # normalised as the core reads it
    sequence = keras.Model(core.inputs, core.get_layer("gru_1").output)(encoded)
    np.testing.assert_allclose(weights[0], first.attention(sequence, None).numpy()[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--ensemble", "0"], "The 'ensemble' parameter must be a positive integer. Got 0 instead."),
    (["--ensemble", "3", "--task", "many-to-many", "--window", "20"], "--ensemble 3 applies to one label per sequence"),
])
def test_an_ensemble_that_cannot_be_built_is_one_line_and_exit_2(tmp_path, args, message):
    train = ts_slice(tmp_path / "bm_TRAIN.ts", 2)
    result = CliRunner().invoke(main, ["fit", str(train), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="positive integer"):
        seqclf.SequenceClassifier(ensemble=1.5).settings()
