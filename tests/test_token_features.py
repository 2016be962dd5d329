"""Further per-token columns (--token-features): read by the model, its export and the server, from files and tables."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from seqclf import SequenceTagger, load
from seqclf.cli import main
from seqclf.data.readers import read_table
from seqclf.data.tokens import TokenTaggingAdapter
from seqclf.errors import DataError

from .conftest import ROOT
from .test_crf import CHUNKS, TINY
from .test_serving import Server

UD_SAMPLE = ROOT / "datasets" / "ud_english_sample.conllu"
SENTENCES = pd.DataFrame({"tokens": [["The", "cat", "sat", "."], ["Dogs", "bark"]],
                          "xpos": [["DT", "NN", "VBD", "."], ["NNS", "VBP"]]})


@pytest.fixture(scope="module")
def tagger():
    frame = read_table(UD_SAMPLE).head(200)
    return SequenceTagger(kind="tokens", token_features="xpos", units=(8,), epochs=1, batch_size=32, seed=0).fit(frame)


def test_the_model_reads_the_feature_column_beside_the_words(tagger):
    assert [layer.name for layer in tagger.model_.inputs] == ["tokens", "xpos"]
    probabilities = tagger.predict_proba(SENTENCES)
    assert probabilities.shape == (2, 4, len(tagger.classes_))
    swapped = tagger.predict_proba(SENTENCES.assign(xpos=[["NN", "DT", "DT", "NN"], ["VBP", "NNS"]]))
    assert np.abs(probabilities[0] - swapped[0]).max() > 1e-4  # another part of speech, another answer
    np.testing.assert_allclose(tagger.predict_proba(SENTENCES.tail(1))[0], probabilities[1, :2], atol=1e-5)


def test_feature_values_training_never_saw_are_unknown_not_errors(tagger):
    adapter = tagger.adapter_
    frame = adapter.prepare(SENTENCES.assign(xpos=[["DT", "NN", "ZZZ", "."], ["NNS", "VBP"]]), "X", labeled=False)
    word_ids, char_ids, xpos_ids = adapter.encode(frame)
    assert word_ids.shape == xpos_ids.shape == (2, 4) and char_ids.shape[:2] == (2, 4)
    assert xpos_ids[0, 2] == 1 and xpos_ids[0, 0] >= 2 and xpos_ids[1, 2:].tolist() == [0, 0]  # unknown; padding
    assert tagger.predict(frame)[0][2] in tagger.classes_


def test_export_server_and_loaded_run_take_the_features_as_further_inputs(tagger, tmp_path):
    expected = [list(tags[:4]) for tags in tagger.predict(SENTENCES)]
    expected[1] = expected[1][:2]
    tagger.save(tmp_path / "run")
    signature = tf.saved_model.load(str(tmp_path / "run" / "export" / "model" / "1")).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["tokens", "xpos"]
    out = signature(tokens=tf.constant([SENTENCES.tokens[0], SENTENCES.tokens[1] + ["", ""]]),
                    xpos=tf.constant([SENTENCES.xpos[0], SENTENCES.xpos[1] + ["", ""]]))
    assert [[t.decode() for t in row[:len(s)]] for row, s in zip(out["label"].numpy(), SENTENCES.tokens)] == expected
    assert [list(tags[:len(s)]) for tags, s in zip(load(tmp_path / "run").predict(SENTENCES), SENTENCES.tokens)] \
        == expected
    server = Server(tmp_path / "run", grpc=True)
    try:
        width = max(map(len, SENTENCES.tokens))
        padded = {name: [list(row) + [""] * (width - len(row)) for row in SENTENCES[name]] for name in ("tokens", "xpos")}
        server.assert_grpc_equals_rest("model", SENTENCES.to_dict("records"), padded)
        rows = server.post("/v1/models/model:predict", {"instances": SENTENCES.to_dict("records")})
        assert rows.status_code == 200, rows.text
        assert [p["label"] for p in rows.json()["predictions"]] == expected
        columns = server.post("/v1/models/model:predict", {"inputs": SENTENCES.to_dict("list")})
        assert columns.status_code == 200 and columns.json()["outputs"]["label"] == expected
        inputs = server.get("/v1/models/model/metadata").json()["metadata"]["signature_def"]["signature_def"]
        assert sorted(inputs["serving_default"]["inputs"]) == ["tokens", "xpos"]
        short = server.post("/v1/models/model:predict", {"instances": [{"tokens": ["a", "b"], "xpos": ["DT"]}]})
        assert short.status_code == 400 and "lists of different lengths" in short.json()["error"]
        bare = server.post("/v1/models/model:predict", {"instances": [["a", "b"]]})
        assert bare.status_code == 400 and "holding the inputs tokens, xpos" in bare.json()["error"]
    finally:
        server.stop()


def test_cli_reads_a_conll_column_and_writes_it_beside_each_token(tmp_path):
    train = tmp_path / "chunks.txt"
    train.write_text("\n\n".join(CHUNKS * 40) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["fit", "--task", "tag", "--token-features", "column_2", str(train),
                                       "--out", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "run" / "test_predictions.csv", keep_default_na=False)
    assert list(table.columns[:5]) == ["id", "step", "token", "column_2", "true_label"]
    summary = json.loads((tmp_path / "run" / "config.json").read_text())["data_summary"]
    assert set(summary["token_features"]) == {"column_2"} and summary["token_features"]["column_2"] >= 5


@pytest.mark.parametrize("options, message", [
    (("--token-features", "pos"), "--token-features names column 'pos', which"),
    (("--token-features", "upos"), "the tag column 'upos'"),
    (("--token-features", "xpos,xpos"), "each once"),
])
def test_cli_token_features_that_cannot_work_exit_2_with_one_line(tmp_path, options, message):
    result = CliRunner().invoke(main, ["fit", "--task", "tag", *options, "--tag-col", "upos", str(UD_SAMPLE),
                                       "--out", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 2, result.output
    assert message in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()


def test_a_feature_list_of_another_length_than_the_tokens_is_refused_with_its_sentence():
    frame = SENTENCES.assign(tags=[["D", "N", "V", "P"], ["N", "V"]], xpos=[["DT", "NN", "VBD", "."], ["NNS"]])
    with pytest.raises(DataError, match=r"sentence 2 has 2 tokens but 1 values in column 'xpos'"):
        TokenTaggingAdapter(token_features="xpos").prepare(frame, "X")
