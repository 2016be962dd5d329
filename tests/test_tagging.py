"""Token tagging: CoNLL-U, CoNLL and table readers, the tagger, padding, entity metrics, export and CLI."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from seqclf import SequenceTagger
from seqclf.cli import main
from seqclf.data.readers import read_table
from seqclf.data.tokens import TokenTaggingAdapter
from seqclf.errors import DataError
from seqclf.tasks.tag import entity_scores

from .conftest import ROOT
from .test_serving import Server

UD_SAMPLE = ROOT / "datasets" / "ud_english_sample.conllu"
UD_TEST = ROOT / "datasets" / "ud_english_sample_test.conllu"
TINY = ("--units", "8", "--epochs", "1", "--batch-size", "32", "--verbose", "0")

CONLLU = """# newdoc id = d1
# sent_id = s1
# text = Don't go.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No
3.1\tgo\t_\t_\t_\t_\t_\t_\t_\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_
"""

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_conllu_reader_keeps_words_and_skips_ranges_and_empty_nodes(tmp_path):
    frame = read_table(write(tmp_path, "a.conllu", CONLLU))
    assert frame["id"].tolist() == ["s1", "s2"]
    assert frame["tokens"].tolist() == [["Do", "n't", "go", "."], ["Hello"]]
    assert frame["upos"].tolist() == [["AUX", "PART", "VERB", "PUNCT"], ["INTJ"]]
    assert frame["xpos"][0] == ["VBP", "RB", "VB", "."]


def test_conll_reader_takes_token_first_tag_last_and_ignores_docstart(tmp_path):
    frame = read_table(write(tmp_path, "a.conll", CONLL))
    assert list(frame.columns) == ["id", "tokens", "column_2", "column_3", "tags"]
    assert frame["tokens"].tolist() == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert frame["tags"].tolist() == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]
    assert frame["column_3"][1] == ["B-NP", "I-NP"]


@pytest.mark.parametrize("name, text, message", [
    ("a.conllu", CONLLU.replace("3\tgo\tgo\tVERB", "3\tgo\tVERB"), "line 7 has 9 tab-separated columns"),
    ("a.conllu", "# sent_id = s0\n\n" + CONLLU, "line 1: sentence 's0' has no tokens"),
    ("a.conll", CONLL.replace("German JJ B-NP B-MISC", "German B-MISC"), "line 5 has 2 columns but line 3 has 4"),
    ("a.conll", "\n\n-DOCSTART- O\n\n", "has no sentences"),
])
def test_bad_conll_files_name_the_line(tmp_path, name, text, message):
    with pytest.raises(DataError, match=re.escape(message)):
        read_table(write(tmp_path, name, text))


def test_tables_of_token_and_tag_lists_in_csv_and_jsonl(tmp_path):
    csv = pd.DataFrame({"words": ['["New", "York"]', "it rains"], "ner": ['["B-LOC", "I-LOC"]', "O O"]})
    csv.to_csv(tmp_path / "t.csv", index=False)
    frame = TokenTaggingAdapter().prepare(read_table(tmp_path / "t.csv"), "t.csv")
    assert frame["words"].tolist() == [["New", "York"], ["it", "rains"]]
    assert frame["ner"].tolist() == [["B-LOC", "I-LOC"], ["O", "O"]]
    (tmp_path / "t.jsonl").write_text('{"tokens": ["a", "b"], "tags": ["X", "Y"]}\n', encoding="utf-8")
    frame = TokenTaggingAdapter().prepare(read_table(tmp_path / "t.jsonl"), "t.jsonl")
    assert frame["tags"].tolist() == [["X", "Y"]]


@pytest.mark.parametrize("tokens, tags, message", [
    (["a b", ""], ["X Y", ""], "has an empty sentence (sentence 2)"),
    (["a b", "c"], ["X", "Y"], "sentence 1 has 2 tokens but 1 tags"),
    (["a b", "c"], ["X _", "Y"], "tokens without a tag in column 'tags' (sentence 1)"),
])
def test_bad_sentences_are_reported_by_sentence(tokens, tags, message):
    with pytest.raises(DataError, match=re.escape(message)):
        TokenTaggingAdapter().prepare(pd.DataFrame({"tokens": tokens, "tags": tags}), "data")


def test_entity_scores_match_a_hand_count():
    # true: PER(0-1), LOC(3), ORG(5-6); predicted: PER(0-1) right, LOC missed, ORG cut short to (5) and MISC(3)... wrong type
    true = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "B-MISC", "O", "B-ORG", "O"]]
    scores = entity_scores(true, predicted)
    assert (scores["precision"], scores["recall"]) == (1 / 3, 1 / 3)  # 1 of 3 predicted spans, 1 of 3 true
    assert scores["per_type"]["PER"]["f1"] == 1.0 and scores["per_type"]["ORG"]["f1"] == 0.0
    bilou = entity_scores([["U-PER", "O", "B-LOC", "L-LOC"]], [["U-PER", "O", "B-LOC", "I-LOC"]])
    assert bilou["scheme"] == "BILOU" and (bilou["precision"], bilou["recall"]) == (1.0, 0.5)


@pytest.fixture(scope="module")
def tagger():
    frame = read_table(UD_SAMPLE).head(300)
    return SequenceTagger(kind="tokens", units=(8,), epochs=2, batch_size=32, seed=0).fit(frame)


def test_padding_changes_nothing(tagger):
    short = ["The", "cat", "sat", "."]
    long = ["In", "the", "end", ",", "nobody", "knew", "what", "had", "happened", "to", "the", "old", "house", "."]
    alone = tagger.predict_proba(pd.DataFrame({"tokens": [short]}))[0]
    beside = tagger.predict_proba(pd.DataFrame({"tokens": [short, long]}))[0]
    assert alone.shape == (4, len(tagger.classes_)) and beside.shape == (len(long), len(tagger.classes_))
    np.testing.assert_allclose(alone, beside[:4], atol=1e-5)
    np.testing.assert_allclose(beside[:4].sum(axis=1), 1.0, atol=1e-5)


def test_a_tagger_fitted_on_a_table_takes_plain_lists_too(tagger):
    sentences = [["The", "cat", "sat", "."], ["Dogs", "bark"]]
    assert [len(tags) for tags in tagger.predict(sentences)] == [4, 4]  # padded to the longest
    assert 0.0 <= tagger.score(sentences, [["DET", "NOUN", "VERB", "PUNCT"], ["NOUN", "VERB"]]) <= 1.0


def test_unseen_words_get_features_from_their_characters(tagger):
    lookup = tagger.adapter_.lookup_
    word_ids, char_ids = lookup(tf.constant([["Zorblax", "the"]]))
    assert word_ids.numpy()[0, 0] == 1 and word_ids.numpy()[0, 1] >= 2  # unknown word, known word
    assert (char_ids.numpy()[0, 0, :7] >= 1).all() and (char_ids.numpy()[0, 0, 7:] == 0).all()


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory):
    """``seqclf fit --task tag`` on the UD sample (all 17 tags occur in it), tested on the sample test file."""
    scratch = tmp_path_factory.mktemp("tagging")
    train = write(scratch, "train.conllu", UD_SAMPLE.read_text(encoding="utf-8"))
    result = invoke("fit", "--task", "tag", "--arch", "bilstm", train, "--test", UD_TEST, "--out", scratch / "run", *TINY)
    assert result.exit_code == 0, result.output
    return scratch / "run"


def test_cli_tag_run_reports_tokens_exports_and_predicts(tag_run):
    run = tag_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n"] == sum(len(t) for t in read_table(UD_TEST)["tokens"])
    assert set(metrics["test"]["per_class"]) >= {"NOUN", "VERB", "PUNCT"}
    table = pd.read_csv(run / "test_predictions.csv", keep_default_na=False)
    assert list(table.columns[:5]) == ["id", "step", "token", "true_label", "label"]
    assert table["token"].head(7).tolist() == ["What", "if", "Google", "Morphed", "Into", "GoogleOS", "?"]
    signature = tf.saved_model.load(str(run / "export" / "train" / "1")).signatures["serving_default"]
    out = signature(tokens=tf.constant([["What", "if", "Google", "Morphed", "Into", "GoogleOS", "?"],
                                        ["Hello", "", "", "", "", "", ""]]))
    assert out["label"].shape == (2, 7) and out["probabilities"].shape[-1] == len(metrics["classes"])
    predicted = invoke("predict", run, UD_TEST)
    assert predicted.exit_code == 0
    rows = pd.read_csv(__import__("io").StringIO(predicted.output), keep_default_na=False)
    assert rows["label"].head(7).tolist() == [t.decode() for t in out["label"].numpy()[0]]
    evaluated = invoke("evaluate", run, UD_TEST)
    assert evaluated.exit_code == 0 and f"{metrics['test']['accuracy']:.4f}" in evaluated.output


def test_cli_reports_bio_entities(tmp_path):
    sentences = ["EU B-ORG\nrejects O\nGerman B-MISC\ncall O", "Peter B-PER\nBlackburn I-PER\nsays O",
                 "the O\nUN B-ORG\nmet O\nin O\nParis B-LOC"] * 12
    train = write(tmp_path, "ner.conll", "\n\n".join(sentences) + "\n")
    result = invoke("fit", "--task", "tag", "--arch", "lstm", train, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 0, result.output
    entities = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["entities"]
    assert set(entities["per_type"]) <= {"ORG", "MISC", "PER", "LOC"} and 0.0 <= entities["f1"] <= 1.0


@pytest.mark.parametrize("train_text, test_text, message", [
    (CONLLU.replace("3\tgo\tgo\tVERB", "3\tgo\tVERB"), None, "line 7 has 9 tab-separated columns"),
    (CONLLU * 3, CONLLU.replace("PART", "_"), "tokens without a tag in column 'upos'"),
])
def test_cli_bad_tagging_input_exits_2_with_one_line(tmp_path, train_text, test_text, message):
    train = write(tmp_path, "train.conllu", train_text)
    extra = ("--test", write(tmp_path, "test.conllu", test_text)) if test_text else ()
    result = CliRunner().invoke(main, [str(a) for a in ("fit", "--task", "tag", train, *extra, "--out", tmp_path / "run",
                                                        *TINY)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_server_tags_ragged_token_lists(tag_run):
    sentences = [["What", "if", "Google", "Morphed", "Into", "GoogleOS", "?"], ["Hello", "world"], ["Go"]]
    signature = tf.saved_model.load(str(tag_run / "export" / "train" / "1")).signatures["serving_default"]
    alone = [[t.decode() for t in signature(tokens=tf.constant([s]))["label"].numpy()[0]] for s in sentences]
    server = Server(tag_run)
    try:
        answer = server.post("/v1/models/train:predict", {"instances": sentences})
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]] == alone  # each trimmed to its own tokens
        for bad in ([["a", ""]], [[]], ["a text, not a list"], [["a", 3]]):
            refused = server.post("/v1/models/train:predict", {"instances": bad})
            assert refused.status_code == 400 and "lists of tokens" in refused.json()["error"]
    finally:
        server.stop()


def test_detection_tells_token_lists_from_sensor_series_with_step_labels():
    from seqclf.data.adapters import detect_adapter

    tokens = pd.DataFrame({"tokens": [["a", "b"]], "tags": [["X", "Y"]]})
    series = pd.DataFrame({"values": [np.zeros((2, 1), "float32")], "label": [np.array(["up", "down"])]})
    assert detect_adapter(tokens, "t").kind == "tokens"
    assert detect_adapter(series, "s").kind == "sensor"


def test_a_conll_txt_is_read_as_columns_and_unseen_test_tags_count_as_errors(tmp_path):
    """CoNLL-2000 is distributed as train.txt/test.txt; its test file holds a tag (I-LST) training never saw."""
    sentences = read_table(UD_SAMPLE).head(60)
    def columns(frame, path):
        path.write_text("".join("".join(f"{t} {g}\n" for t, g in zip(tokens, tags)) + "\n"
                                for tokens, tags in zip(frame["tokens"], frame["upos"])), encoding="utf-8")
        return path
    train = columns(sentences.head(50), tmp_path / "train.txt")
    test_frame = sentences.tail(10).copy()
    test_frame.at[test_frame.index[0], "upos"] = ["NEWTAG"] + list(test_frame["upos"].iloc[0][1:])
    test = columns(test_frame, tmp_path / "test.txt")
    run = tmp_path / "run"
    result = invoke("fit", "--task", "tag", train, "--test", test, "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    warning = "1 token(s) carry tags the training data lacks ('NEWTAG' x1)"
    assert warning in result.stderr and result.stderr.index(warning) < result.stderr.index("parameters; classes")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n"] == sum(map(len, test_frame["tokens"]))  # the unseen tag is scored (wrong)
    assert "NEWTAG" not in metrics["classes"]
    missing = invoke("fit", "--task", "tag", tmp_path / "missing.txt", "--out", tmp_path / "r2", *TINY)
    assert missing.exit_code == 2 and "missing.txt does not exist" in missing.stderr
    evaluated = invoke("evaluate", run, test, "--output", tmp_path / "e.json")
    assert evaluated.exit_code == 0 and warning in evaluated.stderr
    assert json.loads((tmp_path / "e.json").read_text())["n"] == metrics["test"]["n"]
