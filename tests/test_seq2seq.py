"""Sequence to sequence: the attention layer against its equations, decoding, and the task through every command."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner
from sklearn.base import clone

import seqclf
from seqclf.cli import main
from seqclf.errors import ConfigError
from seqclf.models.seq2seq import END, START, AdditiveAttention, beam_search, build_seq2seq, parts
from seqclf.tasks.seq2seq import scores

from .test_serving import Server

SAMPLE = Path(__file__).resolve().parent.parent / "datasets" / "cmudict_sample.tsv"


def numpy_attention(query, values, mask, weights):
    """e_j = v^T tanh(W s + U h_j), alpha = softmax over the real steps, c = sum_j alpha_j h_j."""
    energy = np.tanh(values @ weights["value_kernel"] + (query @ weights["query_kernel"])[:, None]) @ weights["score"]
    energy = np.where(mask, energy, -np.inf)
    alpha = np.exp(energy - energy.max(axis=1, keepdims=True))
    alpha /= alpha.sum(axis=1, keepdims=True)
    return (alpha[..., None] * values).sum(axis=1), alpha


def random_attention(dtype="float32"):
    layer = AdditiveAttention(units=5, dtype=dtype)
    layer.build((None, 4), (None, 6, 3))
    rng = np.random.default_rng(0)
    for variable in layer.weights:
        variable.assign(rng.normal(0, 0.7, size=variable.shape).astype(dtype))
    return layer, {v.path.split("/")[-1]: keras.ops.convert_to_numpy(v).astype("float64") for v in layer.weights}


def test_attention_equals_the_equations_and_ignores_padded_steps():
    layer, weights = random_attention()
    rng = np.random.default_rng(1)
    query, values = rng.normal(size=(2, 4)).astype("float32"), rng.normal(size=(2, 6, 3)).astype("float32")
    mask = np.arange(6) < np.array([[6], [3]])
    context, alpha = layer(query, values, mask=mask)
    expected_context, expected_alpha = numpy_attention(query.astype("float64"), values.astype("float64"), mask, weights)
    np.testing.assert_allclose(alpha.numpy(), expected_alpha, atol=1e-5)
    np.testing.assert_allclose(context.numpy(), expected_context, atol=1e-5)
    assert alpha.numpy()[1, 3:].max() == 0.0
    changed = values.copy()
    changed[1, 3:] = 50.0  # whatever the padding holds
    np.testing.assert_allclose(layer(query, changed, mask=mask)[0].numpy(), context.numpy(), atol=1e-6)


def test_attention_gradient_matches_finite_differences():
    layer, _ = random_attention("float64")
    rng = np.random.default_rng(2)
    query, values = tf.constant(rng.normal(size=(2, 4))), tf.constant(rng.normal(size=(2, 6, 3)))
    mask = tf.constant(np.arange(6) < np.array([[6], [4]]))
    loss = lambda: tf.reduce_sum(layer(query, values, mask=mask)[0] ** 2)
    for variable in layer.weights:
        with tf.GradientTape() as tape:
            value = loss()
        analytic = tape.gradient(value, variable.value).numpy()
        base, eps = variable.numpy().copy(), 1e-6
        for index in [(0,) * base.ndim, tuple(s - 1 for s in base.shape)]:
            shifted = []
            for sign in (1, -1):
                changed = base.copy()
                changed[index] += sign * eps
                variable.assign(changed)
                shifted.append(float(loss()))
            variable.assign(base)
            assert analytic[index] == pytest.approx((shifted[0] - shifted[1]) / (2 * eps), rel=1e-5, abs=1e-8)


@pytest.fixture(scope="module")
def untrained():
    keras.utils.set_random_seed(3)
    model = build_seq2seq("bigru", source_vocab_size=12, target_vocab_size=9, units=(6,), embedding_dim=5)
    return model, np.array([[2, 5, 7, 3, 0], [4, 4, 0, 0, 0], [9, 8, 7, 6, 5]])


def test_beam_of_one_is_greedy_decoding(untrained):
    model, source = untrained
    encoder, decoder = parts(model)
    found = beam_search(encoder, decoder, source, 1, 7)
    states = encoder(source)
    mask = tf.not_equal(source, 0)
    state, keys, fixed = decoder.start(states, mask)
    previous, greedy, total = tf.fill([3], tf.constant(START, tf.int64)), [], np.zeros(3)
    done, lengths = np.zeros(3, bool), np.zeros(3, int)
    for _ in range(7):  # the obvious loop: the most probable symbol each step
        probabilities, state, _ = decoder.step(previous, state, states, mask, keys, fixed)
        best = np.argmax(probabilities.numpy(), axis=1)
        total += np.where(done, 0, np.log(probabilities.numpy()[np.arange(3), best] + 1e-12))
        lengths += ~done
        greedy.append(np.where(done, END, best))
        done |= best == END
        previous = tf.constant(best, tf.int64)
    greedy = np.stack(greedy, axis=1)
    length = found["length"].numpy()
    for row in range(3):
        np.testing.assert_array_equal(found["symbols"].numpy()[row, :length[row]], greedy[row, :length[row]])
    np.testing.assert_allclose(found["score"].numpy(), total / lengths, rtol=1e-5)
    assert found["attention"].shape[:2] == (3, 7)
    np.testing.assert_allclose(found["attention"].numpy()[:, 0].sum(axis=1), 1.0, atol=1e-5)
    assert found["attention"].numpy()[1, :, 2:].max() == 0.0  # padded source steps get no attention


def test_a_wider_beam_scores_at_least_as_well(untrained):
    model, source = untrained
    encoder, decoder = parts(model)
    narrow, wide = (beam_search(encoder, decoder, source, k, 6)["score"].numpy() for k in (1, 5))
    assert (wide >= narrow - 1e-6).all()


def test_an_lstm_decoder_without_attention_reads_one_fixed_context():
    model = build_seq2seq("lstm", source_vocab_size=12, target_vocab_size=9, units=(6,), decoder="lstm:5",
                          attention="none")
    encoder, decoder = parts(model)
    assert decoder.units == 5 and decoder.attention is None
    found = beam_search(encoder, decoder, np.array([[2, 3, 0], [4, 0, 0]]), 3, 5)
    assert found["symbols"].shape == (2, 5) and float(tf.reduce_max(found["attention"])) == 0.0
    assert model([np.array([[2, 3, 0]]), np.array([[2, 4]])]).shape == (1, 2, 9)


def test_scores_honour_several_references():
    measured = scores(["K AE T", "D AO G", "X"], [["K AE T"], ["D AA G", "D AO G"], ["Y", "Y Y"]], "space", [0, 0, 1])
    assert measured["exact_match"] == pytest.approx(2 / 3) and measured["word_error_rate"] == pytest.approx(1 / 3)
    assert measured["symbol_error_rate"] == pytest.approx(1 / 7)  # one substitution against "Y" (1 of 3 + 3 + 1)
    assert measured["capped"] == pytest.approx(1 / 3) and measured["references"] == 5


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """600 rows of the CMUdict sample (characters in, phones out) and one tiny run trained on them."""
    folder = tmp_path_factory.mktemp("g2p")
    data = folder / "pairs.tsv"
    pd.read_csv(SAMPLE, sep="\t").head(600).to_csv(data, sep="\t", index=False)
    run = folder / "run"
    result = CliRunner().invoke(main, ["fit", "--task", "seq2seq", str(data), "--target-tokens", "space", "--units",
                                       "8", "--epochs", "1", "--beam-size", "3", "--out", str(run), "--verbose", "0"])
    assert result.exit_code == 0, result.output
    return data, run


def test_fit_writes_a_run_with_text_metrics(pairs):
    _, run = pairs
    config, metrics = (json.loads((run / name).read_text()) for name in ("config.json", "metrics.json"))
    assert config["task"] == "seq2seq" and config["kind"] == "pairs" and config["settings"]["arch"] == "bigru"
    budget = metrics["budget"]  # the task's own auto training: a higher rate, halved on plateaus
    assert (budget["learning_rate"], budget["lr_schedule"], budget["keeps"]) == (0.003, "plateau", "best")
    examples = json.loads((run / "report_examples.json").read_text())  # the report's surest wrong outputs
    assert examples and all(e["output"] not in e["references"].split(" | ") for e in examples)
    assert [e["score"] for e in examples] == sorted((e["score"] for e in examples), reverse=True)
    assert "references" in (run / "report.html").read_text()
    test = metrics["test"]
    assert set(test) >= {"exact_match", "word_error_rate", "symbol_error_rate", "capped", "n", "references"}
    assert test["word_error_rate"] == pytest.approx(1 - test["exact_match"]) and test["symbol_error_rate"] > 0
    table = pd.read_csv(run / "test_predictions.csv")
    assert list(table.columns) == ["id", "source", "references", "output", "score", "correct"]
    assert len(table) == test["n"] and table["source"].is_unique
    assert (run / "test_alignment.png").stat().st_size > 1000


def test_predict_equals_the_export_and_unseen_symbols_are_no_error(pairs):
    _, run = pairs
    words = ["cat", "zebra", "çà"]  # ç and à never occur in the training words
    printed = CliRunner().invoke(main, ["predict", str(run), *sum((["--text", w] for w in words), [])])
    assert printed.exit_code == 0, printed.output
    table = pd.read_csv(pd.io.common.StringIO(printed.output), keep_default_na=False)
    assert list(table.columns) == ["id", "source", "output", "score"] and list(table["source"]) == words
    export = tf.saved_model.load(str(next((run / "export").iterdir()) / "1"))
    served = export.signatures["serving_default"](source=tf.constant(words))
    assert [o.decode() for o in served["output"].numpy()] == list(table["output"])
    np.testing.assert_allclose(served["score"].numpy(), table["score"], atol=1e-5)
    aligned = export.signatures["attention"](source=tf.constant(words))
    assert aligned["attention"].shape[0] == 3 and aligned["source_symbols"].numpy()[0, :3].tolist() == [b"c", b"a", b"t"]
    estimator = seqclf.load(run)
    assert isinstance(estimator, seqclf.SequenceTranslator) and list(estimator.predict(words)) == list(table["output"])
    greedy = estimator.translate(words, beam_size=1)
    assert len(greedy["output"]) == 3 and all(np.isfinite(greedy["score"]))


def test_evaluate_explain_and_info(pairs, tmp_path):
    data, run = pairs
    evaluated = CliRunner().invoke(main, ["evaluate", str(run), str(data), "--output", str(tmp_path / "e.json")])
    assert evaluated.exit_code == 0, evaluated.output
    assert "symbol error rate" in evaluated.output and "sources (600 references)" in evaluated.output
    explained = CliRunner().invoke(main, ["explain", str(run), "--text", "hello", "--out", str(tmp_path / "x")])
    assert explained.exit_code == 0, explained.output
    assert explained.output.startswith("output ") and (tmp_path / "x" / "explain.png").stat().st_size > 1000
    assert "<table" in (tmp_path / "x" / "explain.html").read_text()
    info = CliRunner().invoke(main, ["info", str(run)])
    assert info.exit_code == 0 and "exact match" in info.output and "max_target_length" in info.output


def test_serve_answers_strings_with_outputs_and_scores(pairs):
    _, run = pairs
    name = json.loads((run / "config.json").read_text())["model"]["export_name"]
    server = Server(run, grpc=True)
    try:
        outputs = server.assert_grpc_equals_rest(name, ["cat", "dog"], {"source": ["cat", "dog"]})
        assert sorted(outputs) == ["output", "score"]
        answer = server.post(f"/v1/models/{name}:predict", {"instances": ["cat", "dog"]})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert len(predictions) == 2 and isinstance(predictions[0]["output"], str)
        assert isinstance(predictions[0]["score"], float)
        assert server.post(f"/v1/models/{name}:predict", {"instances": [3]}).status_code == 400
    finally:
        assert server.stop() == 0


def test_python_estimator_fits_scores_clones_and_saves(tmp_path):
    frame = pd.read_csv(SAMPLE, sep="\t").head(300)
    g2p = seqclf.SequenceTranslator(target_tokens="space", units=(4,), epochs=1, beam_size=2)
    assert clone(g2p).get_params()["beam_size"] == 2
    g2p.fit(frame["source"], frame["target"])
    assert g2p.predict(["cat", "dog"]).shape == (2,)
    assert 0.0 <= g2p.score(frame["source"], frame["target"]) <= 1.0
    with pytest.raises(ConfigError, match="texts, not class probabilities"):
        g2p.predict_proba(["cat"])
    g2p.save(tmp_path / "run")
    assert list(seqclf.load(tmp_path / "run").predict(["cat"])) == list(g2p.predict(["cat"]))
    assert list(pickle.loads(pickle.dumps(g2p)).predict(["cat"])) == list(g2p.predict(["cat"]))


def test_a_headerless_two_column_file_and_word_tokens(tmp_path):
    data = tmp_path / "plain.tsv"
    rows = [f"the {w} sat\tle {w} assis" for w in ("cat", "dog", "bird", "fox", "cow", "pig", "hen", "elk")] * 3
    data.write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["fit", "--task", "seq2seq", str(data), "--source-tokens", "word",
                                       "--target-tokens", "word", "--units", "4", "--epochs", "1", "--out", str(run)])
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "config.json").read_text())["data_summary"]
    assert summary["rows"]["train"] + summary["rows"]["val"] + summary["rows"]["test"] == 24  # the first line is data
    # vocabularies from the training split only: "the", "sat" and the six animals left there (a source's three rows
    # stay together, so one animal went to validation and one to test)
    assert summary["rows"]["test"] == summary["rows"]["val"] == 3 and summary["source_symbols"] == 8


@pytest.mark.parametrize("content, message", [
    ("source,target\ncat,K AE T\ndog,\n", "no a target (training and evaluation rows need one) in column 'target' at data row 2"),
    ("source,target\ncat,K AE T\ndog,K AE T\ncow,K AE T\n", "one distinct target only"),
    ("source,target\n1,2\n3,4\n5,6\n", "holds int values, not text"),
    ("input,output\n,K AE T\ndog,D AO G\n", "no text in column 'input' at data row 1"),
])
def test_bad_pairs_get_one_line_and_exit_2(tmp_path, content, message):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    result = CliRunner().invoke(main, ["fit", "--task", "seq2seq", str(data), "--epochs", "1", "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists() and not any(p.name.startswith(".run") for p in tmp_path.iterdir())


def test_targets_over_the_cap_are_dropped_or_refused(tmp_path):
    data = tmp_path / "long.csv"
    data.write_text("source,target\n" + "".join(f"w{i},{'A ' * (2 + i % 3)}B\n" for i in range(40)))
    result = CliRunner().invoke(main, ["fit", "--task", "seq2seq", str(data), "--target-tokens", "space",
                                       "--max-target-length", "1", "--epochs", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "every training target is longer than --max-target-length 1" in result.output
    assert not (tmp_path / "r").exists()
    result = subprocess.run([sys.executable, "-m", "seqclf.cli", "fit", "--task", "seq2seq", str(data),
                             "--target-tokens", "space", "--max-target-length", "4", "--units", "4", "--epochs", "1",
                             "--out", str(tmp_path / "r2")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "training targets are longer than 4 symbols (--max-target-length) and are left out" in result.stderr
