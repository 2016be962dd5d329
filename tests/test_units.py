"""seqclf cells: units re-run step by step as the layers compute them, the gates from the weights, the scores, the
features, and a model trained to count brackets whose counting unit is found."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

import seqclf
from seqclf.cli import main
from seqclf.errors import ConfigError, DataError
from seqclf.explain import every_step, walk_recurrent
from seqclf.models.builders import build_classifier
from seqclf.step_features import TEXT_FEATURES, step_positions
from seqclf.layer_states import layer_states
from seqclf.units import find_units, unit_scores

CELL_SPECS = ["lstm:5", "gru:4", "gru-reset-before:4", "rnn:3", "bi-peephole-lstm:4", "cifg:4", "jordan:3",
              "lstm-fgr:3", "bilstm:4,3"]


def padded_ids(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, 30, size=(4, 9))
    for row, length in enumerate((9, 6, 3, 1)):
        ids[row, length:] = 0
    return ids


@pytest.mark.parametrize("spec", CELL_SPECS)
def test_step_by_step_states_are_what_the_layers_compute(spec):
    core = build_classifier(spec, n_classes=3, units=(4,), vocab_size=30, embedding_dim=6, pooling="mean")
    walk = walk_recurrent(core, padded_ids())
    for layer, x, mask in walk.layers:
        recorded, output = layer_states(layer, x, mask)
        expected = np.asarray(every_step(layer, x, mask))
        real = np.asarray(mask)
        got = np.concatenate([states.states["h"] for states in recorded], axis=-1)
        np.testing.assert_allclose(got[real], expected[real], atol=1e-5)
        np.testing.assert_allclose(output[real], expected[real], atol=1e-5)  # return_sequences: every step
        assert len(recorded) == (2 if spec.startswith("bi") else 1)


@pytest.mark.parametrize("spec,h_of", [("lstm:5", "tanh"), ("peephole-lstm:4", "tanh"), ("lstm-noaf:4", "identity"),
                                       ("cifg:4", "tanh")])
def test_recomputed_output_gates_give_the_hidden_state(spec, h_of):
    core = build_classifier(spec, n_classes=2, units=(4,), vocab_size=30, embedding_dim=6, pooling="mean")
    layer, x, mask = walk_recurrent(core, padded_ids(1)).layers[0]
    (states,), _ = layer_states(layer, x, mask)
    real = np.asarray(mask)
    c, o = states.states["c"][real], states.gates["output"][real]
    np.testing.assert_allclose(states.states["h"][real], o * (np.tanh(c) if h_of == "tanh" else c), atol=1e-5)
    assert set(states.gates) == {"input", "forget", "output"}
    if spec.startswith("cifg"):
        np.testing.assert_allclose(states.gates["forget"], 1 - states.gates["input"], atol=1e-6)


def test_recomputed_gru_gates_match_numpy():
    core = build_classifier("gru:4", n_classes=2, units=(4,), vocab_size=30, embedding_dim=6, pooling="mean")
    layer, x, mask = walk_recurrent(core, padded_ids(2)).layers[0]
    (states,), _ = layer_states(layer, x, mask)
    kernel, recurrent, bias = (w.numpy() for w in layer.cell.weights)
    x, h_prev = np.asarray(x)[:, 3], states.states["h"][:, 2]
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    from_x, from_h = x @ kernel + bias[0], h_prev @ recurrent + bias[1]
    np.testing.assert_allclose(states.gates["update"][:, 3], sigmoid(from_x[:, :4] + from_h[:, :4]), atol=1e-5)
    np.testing.assert_allclose(states.gates["reset"][:, 3], sigmoid(from_x[:, 4:8] + from_h[:, 4:8]), atol=1e-5)


def test_unit_scores_are_spearman_and_auroc():
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(200, 3))
    numeric = activations[:, 0] * 2 + rng.normal(size=200)
    rho = unit_scores(activations, numeric, boolean=False)
    np.testing.assert_allclose(rho, [spearmanr(activations[:, k], numeric)[0] for k in range(3)], atol=1e-10)
    flags = (activations[:, 1] + rng.normal(size=200) > 0).astype(float)
    auroc = unit_scores(activations, flags, boolean=True)
    np.testing.assert_allclose(auroc, [roc_auc_score(flags, activations[:, k]) for k in range(3)], atol=1e-10)


def test_text_features_per_character():
    text = 'if (a[0]) {\n    say "hi (x"  # done\n}'
    depth = TEXT_FEATURES["bracket-depth"].compute(text)
    assert depth[text.index("a")] == 1 and depth[text.index("0")] == 2 and depth[text.index("say")] == 1
    quote = TEXT_FEATURES["quote"].compute(text)
    assert quote[text.index("h")] == 1 and quote[text.index("#")] == 0
    comment = TEXT_FEATURES["comment"].compute(text)
    assert comment[text.index("done")] == 1 and comment[text.index("say")] == 0 and comment[-1] == 0
    assert TEXT_FEATURES["indent"].compute(text)[text.index("say")] == 4
    assert TEXT_FEATURES["line-position"].compute(text)[text.index("say")] == 4


def test_word_steps_start_where_text_vectorization_keeps_a_word():
    import keras

    text = "A gripping -- funny, film ... (really)"
    vectorizer = keras.layers.TextVectorization()
    vectorizer.adapt([text])
    tokens = [t for t in vectorizer([text]).numpy()[0] if t]
    starts = step_positions(text, characters=False)
    assert len(starts) == len(tokens) == 5 and text[starts[-1]] == "("


def bracket_strings(n, rng):
    texts, depths = [], []
    for _ in range(n):
        depth, chars = 0, []
        for _ in range(rng.integers(10, 40)):
            opening = depth == 0 or (depth < 6 and rng.random() >= 0.45)
            chars.append("(" if opening else ")")
            depth += 1 if opening else -1
        texts.append("".join(chars))
        depths.append(str(depth))
    return pd.DataFrame({"text": texts, "label": depths})


@pytest.fixture(scope="module")
def counter():
    """A character model trained to tell how many brackets are still open at the end: a unit must count."""
    rng = np.random.default_rng(0)
    clf = seqclf.SequenceClassifier(arch="lstm:8", tokens="char", epochs=30, learning_rate=0.01, verbose=0, seed=0)
    train = bracket_strings(1200, rng)
    return clf.fit(train["text"], train["label"]), bracket_strings(150, rng)


def test_a_counting_unit_is_found_far_above_both_null_baselines(counter):
    clf, data = counter
    report = find_units(clf, data, ["bracket-depth"], max_steps=3000)
    (tracking,) = report.trackings
    top = tracking.top[0]
    assert top["strength"] > 0.85, tracking.top[:3]
    assert top["strength"] > tracking.untrained["strength"] + 0.15
    assert tracking.shuffled["max"] < 0.2
    assert tracking.ablation["marked"] > 0.1 and tracking.ablation["unit_of_loss"] == "sequences"
    assert {row["gate"] for row in report.saturation} == {"input", "forget", "output"}
    assert all(0 <= row["below"] <= 1 and 0 <= row["above"] <= 1 for row in report.saturation)
    assert report.n_steps <= 3000 and len(report.steps) == len(tracking.activation) == len(tracking.values)


def test_cells_cli_writes_the_report_and_refuses_unknown_features(counter, tmp_path):
    clf, data = counter
    run = clf.save(tmp_path / "run")
    data.to_csv(tmp_path / "brackets.csv", index=False)
    result = CliRunner().invoke(main, ["cells", str(run), str(tmp_path / "brackets.csv"), "--feature", "bracket-depth",
                                       "--feature", "step", "--max-steps", "1500", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "feature bracket-depth" in result.output and "gate saturation" in result.output
    report = json.loads((tmp_path / "out" / "cells.json").read_text())
    assert [f["feature"] for f in report["features"]] == ["bracket-depth", "step"]
    page = (tmp_path / "out" / "cells.html").read_text()
    assert page.count("<span") == len(json.loads(json.dumps(report))["features"]) * min(600, report["n_steps"])
    assert (tmp_path / "out" / "cells.png").stat().st_size > 10000
    bad = CliRunner().invoke(main, ["cells", str(run), str(tmp_path / "brackets.csv"), "--feature", "quotes"])
    assert bad.exit_code == 2 and "unknown feature 'quotes'" in bad.output and "bracket-depth" in bad.output
    assert not (run / "cells").exists()


def test_a_feature_that_never_varies_is_refused(counter):
    clf, data = counter
    with pytest.raises(DataError, match="single value"):
        find_units(clf, data, ["quote"], max_steps=500)
    with pytest.raises(ConfigError, match="at least one feature"):
        find_units(clf, data, [])


def test_a_sensor_column_is_cut_into_the_same_series_as_the_channels():
    rng = np.random.default_rng(0)
    rows = []
    for series in range(24):
        x = np.sin(np.arange(30) / (2 + series % 2) + rng.uniform(0, 6))
        for step in rng.permutation(30):  # out of order: the time column sorts them
            rows.append({"series": series, "time": step, "x": x[step], "rising": float(step and x[step] > x[step - 1]),
                         "label": str(series % 2)})
    table = pd.DataFrame(rows)
    clf = seqclf.SequenceClassifier(kind="sensor", arch="gru:4", channels=["x"], epochs=1, seed=0).fit(table)
    report = find_units(clf, table, ["rising", "step"], max_steps=300)
    rising = report.trackings[0]
    assert rising.boolean and rising.measure == "AUROC" and report.n_steps == 300
    first = table[table["series"] == table["series"].iloc[0]].sort_values("time")["rising"].to_numpy()
    np.testing.assert_array_equal(rising.values[:30], first)  # the first series' steps, in time order
    with pytest.raises(ConfigError, match="unknown feature 'quote' for sensor data; choose from step, rising"):
        find_units(clf, table, ["quote"])


def test_an_ablated_unit_is_held_at_zero_in_its_states():
    core = build_classifier("lstm:4", n_classes=2, units=(4,), vocab_size=30, embedding_dim=6, pooling="mean")
    layer, x, mask = walk_recurrent(core, padded_ids(3)).layers[0]
    (held,), output = layer_states(layer, x, mask, ablate=(0, "c", 1))
    (free,), _ = layer_states(layer, x, mask)
    real = np.asarray(mask)
    assert (held.states["c"][real][:, 1] == 0).all() and (held.states["h"][real][:, 1] == 0).all()
    assert (output[real][:, 1] == 0).all() and not np.allclose(held.states["h"][real], free.states["h"][real])


def test_taggers_are_refused_in_one_line(tmp_path):
    from pathlib import Path

    run = Path(__file__).parent / "fixtures" / "runs_v0" / "tagger"
    data = tmp_path / "sentences.csv"
    pd.DataFrame({"tokens": ["The cat sat ."]}).to_csv(data, index=False)
    result = CliRunner().invoke(main, ["cells", str(run), str(data), "--feature", "step", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "this run's kind is tokens" in result.output
    assert not (tmp_path / "o").exists()


def test_per_step_models_with_a_convolution_branch_are_read_without_ablation():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(20, 2)).astype("float32") for _ in range(12)]
    y = [np.where(series[:, 0] > 0, "up", "down") for series in X]
    tagger = seqclf.SequenceTagger(arch="lstm:4+fcn", epochs=1, seed=0).fit(X, y)
    table = pd.DataFrame({"values": X, "label": list(y)})
    report = find_units(tagger, table, ["step"], max_steps=100)
    assert report.trackings[0].ablation is None  # the layers after the LSTM read the convolution branch too
    from seqclf.gradients import gradient_by_distance

    with pytest.raises(ConfigError, match="convolution branch"):
        gradient_by_distance(tagger, table)
