"""The CRF output layer: its algorithms against a NumPy brute force, its gradient, the layer, and a CRF tagger."""

import itertools
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from seqclf import SequenceTagger
from seqclf.cli import main
from seqclf.data.readers import read_table
from seqclf.models.crf import CRF, CRFLoss, bio_allowed, check_bio, log_likelihood, marginals, max_marginals

from .conftest import ROOT
from .test_serving import Server

UD_SAMPLE = ROOT / "datasets" / "ud_english_sample.conllu"
TINY = ("--units", "8", "--epochs", "1", "--batch-size", "32", "--verbose", "0")
CHUNKS = ["He PRP B-NP\nreckons VBZ B-VP\nthe DT B-NP\ncurrent JJ I-NP\ndeficit NN I-NP",
          "Rockwell NNP B-NP\nsaid VBD B-VP\nthe DT B-NP\nagreement NN I-NP\ncalls VBZ B-VP\nfor IN B-PP\nit PRP B-NP",
          "Chancellor NNP B-NP\nof IN B-PP\nthe DT B-NP\nExchequer NNP I-NP\n, , O\nNigel NNP B-NP\nLawson NNP I-NP"]


def random_chain(seed, n=3, steps=4, k=3):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, steps, k)), rng.normal(size=(k, k)), rng.normal(size=k), rng.normal(size=k))


def brute_force(potentials, transitions, start, end, length):
    """Every tag sequence of ``length`` steps with its score."""
    k = potentials.shape[-1]
    paths = list(itertools.product(range(k), repeat=length))
    scores = np.array([start[y[0]] + sum(potentials[t, y[t]] for t in range(length))
                       + sum(transitions[y[t - 1], y[t]] for t in range(1, length)) + end[y[-1]] for y in paths])
    return paths, scores


def test_likelihood_paths_and_marginals_equal_a_brute_force_over_every_tag_sequence():
    potentials, transitions, start, end = random_chain(0)
    lengths = [4, 2, 1]
    mask = np.array([[1.0] * n + [0.0] * (4 - n) for n in lengths])
    gold = np.random.default_rng(1).integers(0, 3, size=(3, 4))
    likelihood = np.asarray(log_likelihood(potentials, np.eye(3)[gold], mask, transitions, start, end))
    best = np.asarray(max_marginals(potentials, mask, transitions, start, end))
    posterior = np.asarray(marginals(potentials, mask, transitions, start, end))
    for b, n in enumerate(lengths):
        paths, scores = brute_force(potentials[b], transitions, start, end, n)
        log_z = np.log(np.exp(scores).sum())
        np.testing.assert_allclose(likelihood[b], scores[paths.index(tuple(gold[b, :n]))] - log_z, atol=1e-9)
        assert tuple(best[b, :n].argmax(axis=-1)) == paths[int(scores.argmax())]  # the Viterbi path
        np.testing.assert_allclose(best[b, :n].max(axis=-1), scores.max(), atol=1e-9)
        expected = np.zeros((n, 3))
        for path, p in zip(paths, np.exp(scores - log_z)):
            expected[np.arange(n), path] += p
        np.testing.assert_allclose(posterior[b, :n], expected, atol=1e-9)


def test_the_negative_log_likelihood_has_the_gradient_finite_differences_give():
    potentials, transitions, start, end = random_chain(2, n=2, steps=3)
    tags = np.eye(3)[[[0, 2, 1], [1, 1, 0]]]
    mask = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])

    def loss(u, a):
        return -tf.reduce_sum(log_likelihood(u, tags, mask, a, start, end))

    u, a = tf.Variable(potentials), tf.Variable(transitions)
    with tf.GradientTape() as tape:
        value = loss(u, a)
    grads = [g.numpy() for g in tape.gradient(value, [u, a])]
    for grad, base, which in ((grads[0], potentials, 0), (grads[1], transitions, 1)):
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            step = np.zeros_like(base)
            step[index] = 1e-6
            args = [(potentials + step, transitions), (potentials - step, transitions)] if which == 0 else [
                (potentials, transitions + step), (potentials, transitions - step)]
            numeric[index] = (float(loss(*args[0])) - float(loss(*args[1]))) / 2e-6
        np.testing.assert_allclose(grad, numeric, atol=1e-5)
    assert np.all(grads[0][1, 2] == 0)  # a padded step gets no gradient


def test_bio_constraints_forbid_inside_tags_after_other_chunks_and_first():
    tags = ["B-NP", "B-VP", "I-NP", "I-VP", "O"]
    first, after = bio_allowed(tags)
    assert first.tolist() == [True, True, False, False, True]
    assert after[:, 2].tolist() == [True, False, True, False, False]  # I-NP after B-NP or I-NP only
    assert check_bio([["B-NP", "I-NP", "O"], ["O", "I-VP"]]) == (1, 1)
    assert check_bio([["B-NP", "I-NP", "O", "B-VP"]]) is None


def test_the_layer_round_trips_decodes_the_best_path_and_ignores_padding():
    crf = CRF(5, tags=["B-NP", "B-VP", "I-NP", "I-VP", "O"], constrain_bio=True, decoding=True)
    inputs = keras.Input((None, 5))
    model = keras.Model(inputs, crf(keras.layers.Masking()(inputs)))
    crf.transitions.assign(np.random.default_rng(0).normal(size=(5, 5)).astype("float32"))
    potentials = np.random.default_rng(1).normal(size=(1, 6, 5)).astype("float32")
    padded = np.concatenate([potentials, np.zeros((1, 3, 5), "float32")], axis=1)
    decoded = np.asarray(model(potentials))
    np.testing.assert_allclose(np.asarray(model(padded))[:, :6], decoded, atol=1e-5)
    np.testing.assert_allclose(decoded.sum(axis=-1), 1.0, atol=1e-5)
    assert check_bio([[crf.tags[k] for k in decoded[0].argmax(axis=-1)]]) is None
    restored = CRF.from_config(crf.get_config())
    assert (restored.n_tags, restored.tags, restored.constrain_bio, restored.decoding) == (5, crf.tags, True, True)


def test_the_loss_is_the_likelihood_per_real_token():
    crf = CRF(3)
    potentials = np.random.default_rng(3).normal(size=(2, 3, 3)).astype("float32")
    crf(potentials)
    y = np.eye(3, dtype="float32")[[[0, 1, 2], [2, 2, 0]]]
    y[1, 2] = 0  # padding: a row of zeros
    per_step = np.asarray(CRFLoss(crf, reduction=None)(y, potentials))
    mask = (y.sum(-1) > 0).astype("float32")
    expected = -np.asarray(crf.log_likelihood(potentials, y, mask))
    np.testing.assert_allclose(per_step.sum(axis=1), expected, rtol=1e-5)
    assert per_step[1, 2] == 0 and np.isclose(per_step[1, 0], per_step[1, 1])


@pytest.fixture(scope="module")
def crf_tagger():
    frame = read_table(UD_SAMPLE).head(300)
    return SequenceTagger(kind="tokens", head="crf", units=(8,), epochs=2, batch_size=32, seed=0).fit(frame)


def test_a_crf_tagger_predicts_its_viterbi_path_in_python_and_in_the_export(crf_tagger, tmp_path):
    sentences = [["The", "cat", "sat", "on", "the", "mat", "."], ["Dogs", "bark"]]
    probabilities = crf_tagger.predict_proba(sentences)
    assert probabilities.shape == (2, 7, len(crf_tagger.classes_))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    alone = crf_tagger.predict_proba([sentences[1]])[0]
    np.testing.assert_allclose(alone, probabilities[1, :2], atol=1e-5)
    crf_tagger.save(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["adapter"]["head"] == "crf" and config["model"]["label_smoothing"] == 0.0
    signature = tf.saved_model.load(str(tmp_path / "run" / "export" / "model" / "1")).signatures["serving_default"]
    out = signature(tokens=tf.constant([sentences[0], sentences[1] + [""] * 5]))
    exported = [[t.decode() for t in row[:len(s)]] for row, s in zip(out["label"].numpy(), sentences)]
    assert exported == [list(tags[:len(s)]) for tags, s in zip(crf_tagger.predict(sentences), sentences)]
    server = Server(tmp_path / "run", grpc=True)
    try:
        width = max(map(len, sentences))
        server.assert_grpc_equals_rest("model", sentences, {"tokens": [s + [""] * (width - len(s)) for s in sentences]})
        answer = server.post("/v1/models/model:predict", {"instances": sentences})
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]] == exported
    finally:
        server.stop()


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_constrained_crf_never_gives_an_inside_tag_out_of_place(tmp_path):
    train = tmp_path / "chunks.txt"
    broken = "of IN B-PP\nthe DT I-NP\nyear NN I-NP"  # CoNLL-2000's training file has 19 such sentences
    train.write_text("\n\n".join(CHUNKS * 120 + [broken] * 2) + "\n", encoding="utf-8")
    result = invoke("fit", "--task", "tag", "--head", "crf", "--constrain-bio", train, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 0, result.output
    assert "training sentence(s) break IOB2" in result.output and "left out of the loss" in result.output
    table = pd.read_csv(tmp_path / "run" / "test_predictions.csv", keep_default_na=False)
    assert check_bio([list(group["label"]) for _, group in table.groupby("id", sort=False)]) is None


@pytest.mark.parametrize("options, message", [
    (("--constrain-bio",), "--constrain-bio constrains a CRF's transitions; add --head crf"),
    (("--head", "crf", "--label-smoothing", "0.1"), "--label-smoothing 0.1 does not apply to --head crf"),
    (("--head", "crf", "--constrain-bio"), "--constrain-bio needs IOB2 tags (O, B-X, I-X)"),
])
def test_cli_crf_settings_that_cannot_work_exit_2_with_one_line(tmp_path, options, message):
    result = invoke("fit", "--task", "tag", *options, UD_SAMPLE, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 2, result.output
    assert message in result.output.strip().splitlines()[-1]  # one line (after the data's summary, if read)
    assert not (tmp_path / "run").exists()


def test_cli_iob1_tags_are_refused_by_constrain_bio_with_the_first_sentence(tmp_path):
    train = tmp_path / "iob1.txt"
    train.write_text("\n\n".join(CHUNKS * 3 + ["the DT I-NP\ncat NN I-NP"] * 5) + "\n", encoding="utf-8")
    result = invoke("fit", "--task", "tag", "--head", "crf", "--constrain-bio", train, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 2, result.output
    assert "training sentences break IOB2, the first sentence" in result.output and "IOB1" in result.output


def test_explain_shows_the_viterbi_path_beside_the_crf_marginals(crf_tagger):
    from seqclf.explain import explain_tags

    view = explain_tags(crf_tagger, [["The", "cat", "sat", "."]])
    assert view.kind == "CRF marginals" and view.tags == list(crf_tagger.predict([["The", "cat", "sat", "."]])[0])
    np.testing.assert_allclose(view.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert view.probabilities.shape == (4, len(crf_tagger.classes_)) and "The/" in view.lines()[0]
    assert view.figure() is not None and "<table" in view.to_html()
