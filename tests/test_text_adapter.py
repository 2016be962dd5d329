import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from seqclf.data.adapters import detect_adapter, get_adapter
from seqclf.data.text import TextAdapter
from seqclf.errors import ConfigError, DataError


def test_columns_are_detected_from_common_names():
    frame = pd.DataFrame({"Review": ["a good film"], "Sentiment": ["pos"]})
    adapter = TextAdapter()
    adapter.prepare(frame, "t")
    assert (adapter.text_col, adapter.label_col) == ("Review", "Sentiment")


def test_the_only_wordy_column_is_the_text_when_no_name_matches():
    frame = pd.DataFrame({"snippet": ["a good film indeed", "bad bad film here"], "y": [1, 0]})
    adapter = TextAdapter()
    adapter.prepare(frame, "t")
    assert adapter.text_col == "snippet"


def test_explicit_columns_win_and_unknown_ones_are_named():
    frame = pd.DataFrame({"a": ["x y z"], "b": ["pos"], "label": ["neg"]})
    adapter = TextAdapter(text_col="a", label_col="b")
    adapter.prepare(frame, "t")
    assert (adapter.text_col, adapter.label_col) == ("a", "b")
    with pytest.raises(DataError, match=r"has no text column 'body' \(its columns: a, b, label\); check --text-col"):
        TextAdapter(text_col="body").prepare(frame, "t")


def test_missing_label_column_says_how_to_fix():
    with pytest.raises(DataError, match="could not find the label column.*--label-col NAME"):
        TextAdapter().prepare(pd.DataFrame({"text": ["a b c"]}), "data.csv")


def test_empty_labels_and_texts_are_listed_by_row():
    with pytest.raises(DataError, match="empty labels in column 'label' at data rows 2, 3"):
        TextAdapter().prepare(pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", None, " "]}), "d")
    with pytest.raises(DataError, match="empty text in column 'text' at data row 1;"):
        TextAdapter().prepare(pd.DataFrame({"text": ["", "b"], "label": ["x", "y"]}), "d")


def test_one_class_is_rejected():
    frame = pd.DataFrame({"text": ["a b", "c d"], "label": ["pos", "pos"]})
    adapter = TextAdapter()
    adapter.prepare(frame, "d")
    with pytest.raises(DataError, match="only one class \\('pos'\\)"):
        adapter.fit(frame, "d")


def test_integer_labels_keep_their_names_in_numeric_order():
    frame = pd.DataFrame({"text": ["a b"] * 3, "label": [10, 2, 10]})
    adapter = TextAdapter()
    adapter.prepare(frame, "d")
    adapter.fit(frame, "d")
    assert adapter.classes_ == ["2", "10"]
    assert adapter.targets(frame, "d").tolist() == [1, 0, 1]


def test_vocabulary_keeps_words_seen_twice_and_length_is_a_high_percentile(reviews):
    adapter = TextAdapter()
    adapter.prepare(reviews, "r")
    adapter.fit(reviews, "r")
    tokens = pd.Series(" ".join(reviews.text).split()).value_counts()
    assert 100 <= len(adapter.vocabulary_) < len(tokens)
    assert adapter.vocabulary_[0] in {"the", ".", "a", ","}
    lengths = reviews.text.str.split().str.len()
    assert lengths.median() < adapter.sequence_length_ <= lengths.max() + 1
    ids = adapter.encode(reviews)
    assert ids.shape == (len(reviews), adapter.sequence_length_)
    assert ids.max() < adapter.model_inputs()["vocab_size"]


def test_overrides_and_character_tokens(reviews):
    adapter = TextAdapter(tokens="char", max_tokens=30, max_length=12)
    adapter.prepare(reviews, "r")
    adapter.fit(reviews, "r")
    assert len(adapter.vocabulary_) == 28
    assert adapter.encode(reviews.head(3)).shape == (3, 12)
    assert all(len(token) == 1 for token in adapter.vocabulary_)


def test_wrapped_model_takes_raw_strings(reviews):
    import keras

    adapter = TextAdapter(max_length=5)
    adapter.prepare(reviews, "r")
    adapter.fit(reviews, "r")
    ids = keras.Input((None,), dtype="int64")
    core = keras.Model(ids, keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(adapter.model_inputs()["vocab_size"], 3)(ids))))
    model = adapter.wrap(core)
    out = model(tf.constant(["a fine film", "dull"]))
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out.numpy(), core(adapter.encode(pd.DataFrame({"text": ["a fine film", "dull"]}))).numpy(),
                               rtol=1e-6)


def test_registry_detects_text_and_names_the_kinds():
    assert detect_adapter(pd.DataFrame({"text": ["a"], "label": [1]}), "d") is TextAdapter
    with pytest.raises(DataError, match="could not tell what kind of data d holds"):
        detect_adapter(pd.DataFrame({"x": [1.0], "y": [2]}), "d")
    with pytest.raises(ConfigError, match="unknown kind 'video'; choose one of: auto, stock, tokens, pairs, text, sensor, chars"):
        get_adapter("video")


@pytest.mark.parametrize("kwargs", [{"tokens": "byte"}, {"max_tokens": 2}, {"max_length": 0}, {"embedding_dim": -1}])
def test_nonsense_settings_are_rejected(kwargs):
    with pytest.raises(ConfigError, match=f"The '{next(iter(kwargs))}' parameter must be"):
        TextAdapter(**kwargs)
