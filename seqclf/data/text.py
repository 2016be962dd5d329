"""The text adapter: a text column and a label column, tokenised inside the model.

Tokenisation is Keras' ``TextVectorization`` (words by default, characters with
``tokens="char"``). The vocabulary and the sequence length are learned from the training split:
words seen at least twice (all words when that leaves fewer than 100), at most ``max_tokens``
entries including padding and out-of-vocabulary, and the 99th percentile of the token counts
as the length. Padding is id 0, masked by the embedding, so it never affects the result.
"""

import math

import numpy as np
import pandas as pd
import tensorflow as tf
import keras

from ..errors import ConfigError, DataError
from .adapters import Adapter, register_adapter
from .columns import TEXT_NAMES, blank, find_column, label_strings, require_column, row_list
from .shards import RowStream
from .vectors import embedding_inputs, pretrained

DEFAULT_MAX_TOKENS = 20_000
MIN_WORD_COUNT = 2
MIN_VOCABULARY = 100
LENGTH_PERCENTILE = 99
TOKEN_SETTINGS = {
    "word": {"split": "whitespace", "standardize": "lower_and_strip_punctuation"},
    "char": {"split": "character", "standardize": "lower"},
}
RESERVED_TOKENS = 2  # padding "" and out-of-vocabulary "[UNK]"
BATCH = 4096


@register_adapter
class TextAdapter(Adapter):
    """Text classification data: one text and one label per row.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"review": ["a fine film", "dull , dull"], "sentiment": ["pos", "neg"]})
    >>> adapter = TextAdapter()
    >>> _ = adapter.prepare(frame, "example")
    >>> adapter.text_col, adapter.label_col
    ('review', 'sentiment')
    """

    kind = "text"
    description = "text column + label column (sentiment, topics); tokenised inside the model"
    reads_texts = True
    def __init__(self, label_col=None, task=None, **options):
        super().__init__(label_col, task, **options)
        self._check_options()

    def _check_options(self):
        if self.tokens not in TOKEN_SETTINGS:
            raise ConfigError(f"The 'tokens' parameter must be one of {', '.join(TOKEN_SETTINGS)}. Got {self.tokens!r} instead.")
        for name, low in (("max_tokens", RESERVED_TOKENS + 1), ("max_length", 1), ("embedding_dim", 1)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < low):
                raise ConfigError(f"The '{name}' parameter must be an integer >= {low}. Got {value!r} instead.")

    def input_column(self):
        return self.text_col or "text"

    @classmethod
    def detect(cls, frame):
        """A table is text if it has a text-named column or a column of multi-word strings."""
        return find_column(frame, None, TEXT_NAMES, "text", "--text-col", "") is not None or bool(_wordy_columns(frame))

    def prepare(self, frame, source, labeled=True):
        frame = super().prepare(frame, source, labeled)
        self.text_col = self._text_column(frame, source)
        empty = blank(frame[self.text_col])
        if empty.any():
            raise DataError(
                f"{source} has empty text in column {self.text_col!r} at {row_list(empty)}; "
                f"remove those rows or fill them in"
            )
        return frame

    def _text_column(self, frame, source):
        column = find_column(frame, self.text_col, TEXT_NAMES, "text", "--text-col", source)
        if column is not None:
            return column
        candidates = [c for c in _wordy_columns(frame) if c != self.label_col]
        if len(candidates) == 1:
            return candidates[0]
        return require_column(frame, None, TEXT_NAMES, "text", "--text-col", source)

    def fit(self, train, source):
        """Learn classes, vocabulary and sequence length from the training split.

        ``train`` is a frame, or a :class:`~seqclf.data.shards.RowStream` read a chunk at a time
        (labels, vocabulary and token counts each take one pass; memory holds the counts only).
        """
        streamed = isinstance(train, RowStream)
        chunks = train.chunks if streamed else (lambda: iter([train]))
        if streamed:
            counts = train.label_counts()
            self.classes_ = self.check_classes(pd.DataFrame({self.label_col: counts.index}), source)
            self.class_counts_ = dict(zip(label_strings(pd.Series(counts.index)), counts.astype(int).tolist()))
        else:
            self.fit_labels(train, source)
        settings = TOKEN_SETTINGS[self.tokens]
        probe = keras.layers.TextVectorization(ragged=True, **settings)
        probe.adapt(tf.data.Dataset.from_generator(lambda: (batch for chunk in chunks() for batch in self._batches(chunk)),
                                                   output_signature=tf.TensorSpec((None,), tf.string)))
        vocabulary = probe.get_vocabulary()[RESERVED_TOKENS:]
        counts, lengths = np.zeros(len(vocabulary) + RESERVED_TOKENS, "int64"), np.zeros(1, "int64")
        for chunk in chunks():
            for batch in self._batches(chunk):
                token_ids = probe(tf.constant(batch))
                counts += np.bincount(token_ids.flat_values.numpy(), minlength=len(counts))
                lengths = _add_counts(lengths, np.bincount(token_ids.row_lengths().numpy()))
        if self.max_tokens is None:
            frequent = [t for t, c in zip(vocabulary, counts[RESERVED_TOKENS:]) if c >= MIN_WORD_COUNT]
            if self.tokens == "word" and len(frequent) >= MIN_VOCABULARY:
                vocabulary = frequent
            vocabulary = vocabulary[: DEFAULT_MAX_TOKENS - RESERVED_TOKENS]
        else:
            vocabulary = vocabulary[: self.max_tokens - RESERVED_TOKENS]
        if not vocabulary:
            raise DataError(f"{source} has no tokens in column {self.text_col!r} after standardisation")
        self.vocabulary_ = list(vocabulary)
        self.sequence_length_ = self.max_length or max(1, math.ceil(percentile_of_counts(lengths, LENGTH_PERCENTILE)))
        self.length_stats_ = {"median": percentile_of_counts(lengths, 50), "max": int(np.flatnonzero(lengths)[-1])}
        self._vectors, self.vectors_ = pretrained(self, [""] * RESERVED_TOKENS + self.vocabulary_, RESERVED_TOKENS)
        self.vectorizer_ = keras.layers.TextVectorization(
            vocabulary=self.vocabulary_, output_sequence_length=self.sequence_length_, name="tokens", **settings
        )
        return self

    def _batches(self, frame):
        texts = self.texts(frame)
        return [texts[i:i + BATCH] for i in range(0, len(texts), BATCH)]

    def texts(self, frame):
        """The texts of the rows of ``frame``, as strings."""
        return frame[self.text_col].astype(str).tolist()

    def encode(self, frame):
        """Token ids ``(n_samples, sequence_length)``, 0 for padding, for training."""
        texts = self.texts(frame)
        return np.concatenate(
            [self.vectorizer_(tf.constant(texts[i:i + BATCH])).numpy() for i in range(0, len(texts), BATCH)]
        ) if texts else np.zeros((0, self.sequence_length_), "int64")

    def raw_inputs(self, frame):
        """The texts as the exported model takes them."""
        return np.array(self.texts(frame), dtype=object)

    def model_inputs(self):
        """Keyword arguments for the builder describing the encoded input."""
        return {"vocab_size": len(self.vocabulary_) + RESERVED_TOKENS, **embedding_inputs(self)}

    def wrap(self, core):
        """A model from raw strings ``(n_samples,)`` to class probabilities."""
        text = keras.Input(shape=(), dtype="string", name="text")
        return keras.Model(text, core(self.vectorizer_(text)), name=f"{core.name}_text")

    def serving_spec(self):
        """The input the exported signature takes: a batch of raw strings."""
        return tf.TensorSpec((None,), tf.string, name="text")

    def summary(self):
        """Learned facts for ``config.json`` and ``seqclf info``."""
        return {
            "text_col": self.text_col,
            "label_col": self.label_col,
            "tokens": self.tokens,
            "vocabulary_size": len(self.vocabulary_) + RESERVED_TOKENS,
            "sequence_length": self.sequence_length_,
            "training_lengths": self.length_stats_,
            "embeddings": getattr(self, "vectors_", None),
        }


def percentile_of_counts(counts, q):
    """The ``q``-th percentile (NumPy's linear interpolation) of values 0, 1, 2, ... occurring ``counts`` times each.

    Examples
    --------
    >>> percentile_of_counts(np.array([0, 2, 1, 0, 1]), 50)  # the values 1, 1, 2, 4
    1.5
    """
    position = q / 100 * (counts.sum() - 1)
    below, above = (int(np.searchsorted(np.cumsum(counts), k, side="right")) for k in
                    (math.floor(position), math.ceil(position)))
    return float(below + (position - math.floor(position)) * (above - below))


def _add_counts(a, b):
    """Two count vectors of possibly different lengths, added."""
    total = np.zeros(max(len(a), len(b)), "int64")
    total[: len(a)] += a
    total[: len(b)] += b
    return total


def _wordy_columns(frame):
    """String columns whose cells hold several words on average."""
    found = []
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) and values.map(lambda v: isinstance(v, str)).all():
            if values.head(200).str.split().str.len().mean() >= 3:
                found.append(column)
    return found
