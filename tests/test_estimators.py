import inspect
import logging
import pickle
import re

import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import seqclf
from seqclf.errors import ConfigError
from seqclf.cli import main

from .conftest import ROOT

TINY = {"units": (4,), "epochs": 1, "batch_size": 32}


@pytest.fixture(scope="module")
def texts(reviews):
    return reviews["text"].tolist(), np.where(reviews["label"] == "pos", 1, 0)


@pytest.fixture(scope="module")
def fitted(texts):
    X, y = texts
    return seqclf.SequenceClassifier(**TINY).fit(X, y)


def test_fit_predict_with_integer_labels_kept_as_given(fitted, texts):
    X, y = texts
    assert fitted.classes_.tolist() == [0, 1]
    assert set(fitted.predict(X[:20])) <= {0, 1}
    probabilities = fitted.predict_proba(X[:20])
    assert probabilities.shape == (20, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert 0.0 <= fitted.score(X, y) <= 1.0
    assert list(fitted.history_) == ["accuracy", "loss", "val_accuracy", "val_loss", "gradient_norm_median",
                                     "gradient_norm_max", "clipped_share"]


def test_a_table_with_its_own_column_names(reviews):
    frame = reviews.rename(columns={"text": "body", "label": "verdict"})
    clf = seqclf.SequenceClassifier(text_col="body", label_col="verdict", **TINY).fit(frame)
    assert clf.classes_.tolist() == ["neg", "pos"]
    assert clf.predict(frame.head(3)).shape == (3,)
    assert clf.predict(["a new text"]).shape == (1,)


def test_not_fitted_and_single_string_errors():
    with pytest.raises(NotFittedError):
        seqclf.SequenceClassifier().predict(["a text"])
    with pytest.raises(ConfigError, match="not a single string"):
        seqclf.SequenceClassifier(**TINY).fit("just one text", [1])


def test_params_clone_and_unknown_arch():
    clf = seqclf.SequenceClassifier(arch="lstm", units=(8, 4))
    assert clf.get_params()["units"] == (8, 4)
    copy = clone(clf.set_params(dropout=0.2))
    assert copy.get_params()["dropout"] == 0.2 and copy is not clf
    with pytest.raises(ConfigError, match="unknown architecture 'cnn'"):
        seqclf.SequenceClassifier(arch="cnn").fit(["a b", "c d"] * 10, [0, 1] * 10)


def test_python_and_cli_refuse_a_setting_that_does_not_apply_alike(texts, reviews_csv, tmp_path):
    X, y = texts
    message = "--window (window=5) does not apply to text data; it applies to sensor, stock data"
    with pytest.raises(ConfigError, match=re.escape(message)):
        seqclf.SequenceClassifier(window=5, **TINY).fit(X, y)
    result = CliRunner().invoke(main, ["fit", str(reviews_csv), "--window", "5", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and result.stderr == f"Error: {message}: leave it out\n" and not (tmp_path / "r").exists()
    typed = CliRunner().invoke(main, ["fit", str(reviews_csv), "--horizon", "1", "--out", str(tmp_path / "r")])
    assert typed.exit_code == 2 and "--horizon (horizon=1) does not apply to text data" in typed.stderr  # even its default


def test_every_task_of_the_cli_is_a_python_task_with_the_same_defaults():
    from seqclf.params import PARAMS
    from seqclf.tasks import TASKS

    signature = inspect.signature(seqclf.SequenceClassifier)
    assert {name: p.default for name, p in signature.parameters.items()} == {
        name: PARAMS[name].default for name in signature.parameters}
    fit_options = {option.name: option for option in main.commands["fit"].params}
    assert set(fit_options["task"].type.choices) == set(TASKS) >= {"many-to-one", "many-to-many", "tag", "next-char"}
    assert signature.parameters["embedding_dim"].default == 64 and "[default: 64]" in fit_options["embedding_dim"].help
    with pytest.raises(ConfigError, match="--task tag does not apply to text data"):
        seqclf.SequenceClassifier(task="tag", kind="text").fit(["a b"] * 4, ["x", "y"] * 2)


def test_a_tagger_of_kind_auto_finds_token_lists_and_positional_parameters_still_work():
    from seqclf.data.readers import read_table

    sentences = read_table(ROOT / "datasets" / "ud_english_sample.conllu").head(40)
    tagger = seqclf.SequenceTagger(units=(4,), epochs=1).fit(list(sentences["tokens"]), list(sentences["upos"]))
    assert tagger.task_.name == "tag" and tagger.adapter_.kind == "tokens"
    assert seqclf.SequenceClassifier("lstm", (8,)).get_params()["units"] == (8,)


def test_cross_validation_grid_search_and_pipeline(texts):
    X, y = texts
    heard = []  # what TensorFlow logs: predicting with one model after another must not warn about retracing
    handler = logging.Handler()
    handler.emit = lambda record: heard.append(record.getMessage())
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        scores = cross_val_score(seqclf.SequenceClassifier(**TINY), X, y, cv=3)
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert scores.shape == (3,) and ((0 <= scores) & (scores <= 1)).all()
    assert not [message for message in heard if "retracing" in message]
    search = GridSearchCV(seqclf.SequenceClassifier(**TINY), {"pooling": ["last", "max"]}, cv=2).fit(X, y)
    assert search.best_params_["pooling"] in {"last", "max"}
    pipeline = make_pipeline(FunctionTransformer(lambda texts: [t.upper() for t in texts]),
                             seqclf.SequenceClassifier(**TINY)).fit(X, y)
    assert pipeline.predict(X[:5]).shape == (5,)


def test_pickle_round_trip_through_the_keras_format(fitted, texts):
    X, _ = texts
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(copy.predict_proba(X[:10]), fitted.predict_proba(X[:10]), rtol=1e-5, atol=1e-6)
    assert copy.classes_.tolist() == fitted.classes_.tolist()


def test_save_is_a_run_the_cli_reads_and_load_reads_cli_runs(fitted, texts, tiny_run, tmp_path):
    X, _ = texts
    run = fitted.save(tmp_path / "saved")
    result = CliRunner().invoke(main, ["predict", str(run), "--text", X[0]])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "id,label,prob_0,prob_1"
    assert float(result.stdout.splitlines()[1].split(",")[3]) == pytest.approx(fitted.predict_proba(X[:1])[0, 1], abs=1e-5)
    assert CliRunner().invoke(main, ["info", str(run)]).exit_code == 0

    loaded = seqclf.load(tiny_run)
    model = keras.saving.load_model(tiny_run / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict_proba(X[:5]), model.predict(np.array(X[:5], dtype=object), verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert loaded.get_params()["units"] == (8,) and loaded.classes_.tolist() == ["neg", "pos"]
    assert "SequenceClassifier" in loaded._repr_html_()


def test_sensor_arrays_of_any_length_fit_predict_score_and_pickle(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array(["still", "moving"] * 20)
    X = [rng.normal(size=(int(rng.integers(8, 20)), 3)) * (3.0 if label == "moving" else 0.3) for label in y]
    clf = seqclf.SequenceClassifier(arch="gru", units=(6,), epochs=3, batch_size=8).fit(X, y)
    assert clf.classes_.tolist() == ["moving", "still"] and clf.pooling_ == "last" and clf.dropout_ == 0.1  # short: no averaging
    assert clf.predict_proba(X[:4]).shape == (4, 2)
    cube = np.stack([x[:8] for x in X])  # the same data as one 3-D array
    assert clf.predict(cube).shape == (40,)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(cube[:3]), clf.predict_proba(cube[:3]), rtol=1e-5, atol=1e-6)

    steps = [np.where(np.abs(x[:, 0]) > 1.0, "high", "low") for x in X]
    tagger = seqclf.SequenceTagger(arch="bigru", units=(6,), epochs=2, batch_size=8)
    assert tagger.get_params()["task"] == "many-to-many" and clone(tagger).get_params() == tagger.get_params()
    tagger.fit(X, steps)
    assert tagger.predict(X[:2]).shape == (2, max(len(X[0]), len(X[1])))
    assert tagger.predict_proba(X[:2]).shape[-1] == 2
    assert 0.0 <= tagger.score(X, steps) <= 1.0
    loaded = seqclf.load(tagger.save(tmp_path / "tagger"))
    assert isinstance(loaded, seqclf.SequenceTagger)
    np.testing.assert_allclose(loaded.predict_proba(X[:2]), tagger.predict_proba(X[:2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("X, y, message", [
    (np.ones((4, 5)) * [[1.0, np.inf, 1.0, 1.0, 1.0]], ["a", "b"] * 2, "infinite values"),
    (np.arange(6.0), ["a", "b"] * 3, "Reshape your data"),
    (np.ones((4, 5), dtype=complex), ["a", "b"] * 2, "complex numbers"),
    (np.ones((4, 5)), ["a", "b", "a"], "X has 4 samples but y has 3 labels"),
    (np.ones((4, 5)), None, "requires y to be passed"),
    (np.ones((4, 5)), [0.5, 1.5, 2.5, 3.5], "Unknown label type"),
])
def test_numeric_input_mistakes_are_clear_errors(X, y, message):
    with pytest.raises(ValueError, match=message):
        seqclf.SequenceClassifier(units=(2,), epochs=1).fit(X, y)


def test_nested_lists_of_numbers_are_sequences_not_texts():
    X = [[0.1, 0.2, 0.3, 0.4], [1.0, 1.1, 1.2, 1.3]] * 10
    clf = seqclf.SequenceClassifier(units=(2,), epochs=1).fit(X, ["low", "high"] * 10)
    assert clf.adapter_.kind == "sensor" and clf.predict(X[:3]).shape == (3,)


def test_npz_file_trains_from_the_cli(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 12, 2)).astype("float32")
    y = np.where(X[:, :, 0].mean(axis=1) > 0, "up", "down")
    np.savez(tmp_path / "series.npz", X=X, y=y)
    result = CliRunner().invoke(main, ["fit", str(tmp_path / "series.npz"), "--units", "4", "--epochs", "1",
                                       "--out", str(tmp_path / "run"), "--verbose", "0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "sensor data" in result.stderr and (tmp_path / "run" / "export" / "series" / "1").is_dir()
