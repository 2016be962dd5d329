"""Pretrained word vectors: the four file formats, lookup and scale, bad files, and vectors inside the run's model."""

import gzip
import hashlib
import json
import tracemalloc

import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import seqclf
from seqclf.cli import main
from seqclf.data.vectors import read_vectors
from seqclf.errors import DataError

from .conftest import SAMPLE

WORDS = ["film", "Paris", "dull", "été", "paris"]
VECTORS = np.arange(15, dtype="float32").reshape(5, 3) / 7


def text_file(path, header=True, words=WORDS, vectors=VECTORS):
    lines = [f"{w} {' '.join(repr(float(x)) for x in v)}" for w, v in zip(words, vectors)]
    path.write_text("\n".join(([f"{len(words)} {vectors.shape[1]}"] if header else []) + lines) + "\n", encoding="utf-8")
    return path


def binary_file(path, words=WORDS, vectors=VECTORS):
    with open(path, "wb") as out:
        out.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        for word, vector in zip(words, vectors):
            out.write(word.encode("utf-8") + b" " + vector.astype("<f4").tobytes() + b"\n")
    return path


@pytest.mark.parametrize("make", ["word2vec text", "glove", "word2vec binary", "gzipped fastText .vec"])
def test_every_format_gives_the_vocabularys_rows_exact_words_before_lowercased_ones(tmp_path, make):
    path = {"word2vec text": lambda: text_file(tmp_path / "v.txt"),
            "glove": lambda: text_file(tmp_path / "glove.txt", header=False),
            "word2vec binary": lambda: binary_file(tmp_path / "v.bin"),
            "gzipped fastText .vec": lambda: tmp_path / "v.vec.gz"}[make]()
    if make.startswith("gzipped"):
        path.write_bytes(gzip.compress(text_file(tmp_path / "v.vec").read_bytes()))
    vectors = read_vectors(path, ["", "[UNK]", "paris", "film", "dull", "été", "unseen"], reserved=2)
    np.testing.assert_array_equal(vectors.matrix[2:6], VECTORS[[4, 0, 2, 3]])  # "paris" itself, not "Paris"
    assert vectors.found.tolist() == [False, False, True, True, True, True, False]
    record = vectors.record
    assert (record["dim"], record["words_in_file"], record["coverage"]) == (3, 5, 0.8)
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and record["bytes"] == path.stat().st_size
    assert read_vectors(path, ["PARIS".lower(), "dull"]).found.all()


def test_words_without_a_vector_start_at_the_files_scale_and_a_big_file_is_streamed(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(20_000)]
    path = text_file(tmp_path / "big.txt", words=words, vectors=rng.normal(0, 2.0, (20_000, 50)).astype("float32"))
    vocabulary = words[:300] + [f"missing{i}" for i in range(700)]
    tracemalloc.start()
    vectors = read_vectors(path, vocabulary, rng=np.random.default_rng(1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert path.stat().st_size > 15e6 and peak < path.stat().st_size / 4  # the vocabulary's rows, a read buffer
    assert vectors.matrix[300:].std() == pytest.approx(vectors.matrix[:300].std(), rel=0.05)
    assert vectors.record["coverage"] == 0.3


@pytest.mark.parametrize("content, message", [
    (b"a 1 2 3\nb 1 2\n", "line 2: 2 values where the file's vectors have 3"),
    (b"2 3\na 1 2 3\nb 1 x 3\n", "line 3: values that are not numbers after 'b'"),
    (b"2 3\nfilm \x00\x00\x80?", "word 1 has 1 of its 3 values; the file is cut short or not word2vec binary"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1: not UTF-8 text"),
    (b"zebra 1 2 3\n", "none of the 2 vocabulary words has a vector in it"),
])
def test_a_bad_vector_file_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.vec"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_vectors(path, ["film", "dull"])


@pytest.fixture(scope="module")
def vector_file(tmp_path_factory):
    """Vectors of 4 values for the 60 most frequent words of the movie-review sample."""
    words = pd.read_csv(SAMPLE)["text"].str.split().explode().value_counts().index[:60]
    rng = np.random.default_rng(2)
    return text_file(tmp_path_factory.mktemp("vectors") / "mr.vec", words=list(words),
                     vectors=rng.normal(size=(60, 4)).astype("float32"))


def test_a_run_starts_from_the_vectors_keeps_them_frozen_and_records_the_file(vector_file, reviews_csv, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["fit", str(reviews_csv), "--embeddings", str(vector_file), "--freeze-embeddings",
                                       "--units", "4", "--epochs", "1", "--out", str(run), "--verbose", "0"])
    assert result.exit_code == 0, result.output
    record = json.loads((run / "config.json").read_text())["data_summary"]["embeddings"]
    assert record["file"] == "mr.vec" and record["dim"] == 4 and record["frozen"] and 0.1 < record["coverage"] < 1
    assert record["sha256"] == hashlib.sha256(vector_file.read_bytes()).hexdigest()
    clf = seqclf.load(run)  # the vectors are inside the saved model: nothing ships beside it
    core = next(layer for layer in clf.model_.layers if layer is not clf.model_ and hasattr(layer, "get_layer"))
    weights = core.get_layer("embedding").get_weights()[0]
    rows = dict(line.split(" ", 1) for line in vector_file.read_text().splitlines()[1:])
    vocabulary = next(layer for layer in clf.model_.layers if isinstance(layer, keras.layers.TextVectorization)
                      ).get_vocabulary()  # padding and unknown first, as the embedding's rows
    for word in ("the", "film"):
        np.testing.assert_allclose(weights[vocabulary.index(word)], np.array(rows[word].split(), "float32"))


@pytest.mark.parametrize("args, message", [
    (["--embedding-dim", "8"], "--embedding-dim 8 does not match the 4 values per word"),
    (["--freeze-embeddings", "--embeddings", ""], "--freeze-embeddings keeps pretrained vectors as they are"),
    (["--embeddings", "nowhere.vec"], "--embeddings nowhere.vec: no such file"),
])
def test_settings_that_do_not_fit_the_vectors_exit_2(vector_file, reviews_csv, tmp_path, args, message):
    args = ["--embeddings", str(vector_file)] + args if args[0] == "--embedding-dim" else args
    result = CliRunner().invoke(main, ["fit", str(reviews_csv), *args, "--epochs", "1", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_a_tagger_reads_vectors_for_its_lowercased_words_and_the_files_words_training_never_saw(tmp_path):
    from collections import Counter

    from seqclf.data.readers import read_table

    from .test_tagging import UD_SAMPLE

    frame = read_table(UD_SAMPLE).head(40)
    counts = Counter(token.lower() for tokens in frame["tokens"] for token in tokens)
    once = [word for word, n in counts.items() if n == 1]
    words = ["The", "of", "and", once[0], "Zebra", "the"]
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [2, 3, 4], [5, 5, 5]], "float32")
    path = text_file(tmp_path / "tags.vec", words=words, vectors=vectors)
    tagger = seqclf.SequenceTagger(kind="tokens", units=(4,), epochs=1, embeddings=str(path)).fit(frame)
    adapter = tagger.adapter_
    assert adapter.vectors_["dim"] == 3 and adapter.vectors_["words_added"] == 1
    # a word seen once stays in the vocabulary when the file has it, else it is unknown; the file's other words join
    assert once[0] in adapter.words_ and not set(once[1:]) & set(adapter.words_) and adapter.words_[-1] == "zebra"
    core = next(layer for layer in tagger.model_.layers if layer is not tagger.model_ and hasattr(layer, "get_layer"))
    weights = core.get_layer("embedding").get_weights()[0]
    assert weights.shape == (len(adapter.words_) + 2, 3) and core.get_layer("embedding").trainable
    np.testing.assert_array_equal(weights[-1], [2, 3, 4])  # never in a batch: the lazy optimizer leaves it as read
