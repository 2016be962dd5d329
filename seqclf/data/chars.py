"""The character language model adapter: plain text in, the next character at every step out.

``seqclf fit --task next-char input.txt`` reads the file (the lines reader gives one row per
line; they are joined again with newlines), cuts the text into sequences of ``max_length``
characters (default 100) and trains a many-to-many model whose target at each step is the
character that follows. Held-out parts are the *end* of the text (validation, then test), never
sampled from the middle, so that no sequence overlaps one it is scored on.

The classes are the characters of the training text; the exported model takes strings and
returns, per character, the distribution of the next one. ``seqclf generate`` samples from it.
"""

import logging
import math

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..errors import DataError
from ..models.string_layers import CharacterLookup
from ..padding import padded
from .adapters import Adapter, register_adapter
from .columns import TEXT_NAMES, find_column

log = logging.getLogger(__name__)
DEFAULT_LENGTH = 100
RESERVED = 2  # padding and unknown, before the characters in the model's input ids


@register_adapter
class NextCharacterAdapter(Adapter):
    """Plain text for a character language model (``--task next-char``).

    Examples
    --------
    >>> adapter = NextCharacterAdapter(max_length=4)
    >>> examples = adapter.prepare(pd.DataFrame({"text": ["hello", "world"]}), "example")
    >>> examples[["input", "next"]].values.tolist()
    [['hell', 'ello'], ['o\\nwo', '\\nwor'], ['rl', 'ld']]
    """

    kind = "chars"
    description = "plain text for a character language model: the next character at every step (--task next-char)"

    def __init__(self, label_col=None, task=None, text_col=None, **options):
        super().__init__(label_col, task, **options)
        self.text_col = text_col

    def get_config(self):
        return {**super().get_config(), "text_col": self.text_col}

    def input_column(self):
        return self.text_col or "text"

    @classmethod
    def detect(cls, frame):
        """Never detected: plain text is classified by default; the language model is asked for by name."""
        return False

    @property
    def length(self):
        return self.max_length or DEFAULT_LENGTH

    def prepare(self, frame, source, labeled=True):
        """Labelled: the text cut into sequences (``input``, and ``next``: the input moved by one character).

        Unlabelled (prediction): each row's text is one input.
        """
        self.text_col = (find_column(frame, self.text_col, TEXT_NAMES, "text", "--text-col", source)
                         or frame.columns[0])
        texts = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in frame[self.text_col]]
        if not labeled:
            return pd.DataFrame({"id": np.arange(1, len(texts) + 1), "input": np.array(texts, dtype=object)})
        text = "\n".join(texts)
        if len(text) < 2:
            raise DataError(f"{source} holds {len(text)} character(s); a language model needs at least two")
        starts = np.arange(0, len(text) - 1, self.length)
        ends = np.minimum(starts + self.length, len(text) - 1)
        return pd.DataFrame({
            "id": np.arange(1, len(starts) + 1), "start": starts,
            "input": [text[s:e] for s, e in zip(starts, ends)],
            "next": [text[s + 1:e + 1] for s, e in zip(starts, ends)],
        })

    def check_classes(self, frame, source):
        classes = sorted(set("".join(frame["next"])))
        if len(classes) < 2:
            raise DataError(f"{source} uses one character only; a language model needs at least two")
        return classes

    def raw_labels(self, frame):
        return pd.Series(list("".join(frame["next"])), dtype=object)

    def label_counts(self, frame):
        return self.raw_labels(frame).value_counts().to_dict()

    def split(self, frame, size, seed, source, part):
        """The last ``size`` share of the sequences: the end of the text."""
        n_held = max(1, int(round(size * len(frame))))
        if len(frame) - n_held < 1:
            raise DataError(f"{source} is too short to hold out a {part} part ({len(frame)} sequences of "
                            f"{self.length} characters); give more text, a shorter --max-length or --{part} FILE")
        return frame.iloc[:-n_held], frame.iloc[-n_held:]

    def lengths(self, frame):
        return frame["input"].str.len().to_numpy()

    def fit(self, train, source):
        self.fit_labels(train, source)
        self.lookup_ = CharacterLookup(self.classes_, name="char_lookup")
        return self

    def _ids(self, strings):
        """Class indices ``(n, longest)`` of each string's characters: -2 for a character unseen in training, -1
        after the string's end."""
        codes = np.frombuffer("".join(strings).encode("utf-32-le"), dtype=np.uint32)
        known = np.frombuffer("".join(self.classes_).encode("utf-32-le"), dtype=np.uint32)
        index = np.searchsorted(known, codes)
        unknown = (index >= len(known)) | (known[np.minimum(index, len(known) - 1)] != codes)
        return padded(np.where(unknown, -2, index), [len(s) for s in strings], -1, "int64")

    def next_ids(self, frame):
        """The class of each step's next character ``(n, longest)``: -2 for one unseen in training, -1 after the end."""
        return self._ids(list(frame["next"]))

    def targets(self, frame, source, unseen=None):
        """The next character's class at each step; -1 (not scored) after the end and for characters unseen in
        training, which no output stands for (logged)."""
        ids = self.next_ids(frame)
        unseen = int((ids == -2).sum())
        if unseen:
            log.warning("%s: %d of %d characters never occur in the training text; they are not scored", source,
                        unseen, int((ids != -1).sum()))
        return np.maximum(ids, -1)

    def encode(self, frame):
        """Input ids as the model's lookup gives them: padding 0, unseen 1, the characters from 2."""
        ids = self._ids(list(frame["input"]))
        return np.where(ids >= 0, ids + RESERVED, np.where(ids == -2, 1, 0))

    def raw_inputs(self, frame):
        return frame["input"].to_numpy(dtype=object)

    def model_inputs(self):
        return {"vocab_size": len(self.classes_) + RESERVED, "embedding_dim": self.embedding_dim}

    def model_defaults(self):
        """Dropout 0.1, as for other inputs of few symbols (the task turns off class weights and smoothing)."""
        return {"pooling": "last", "dropout": 0.1}

    def wrap(self, core):
        """A model from texts ``(n,)`` to the next character's distribution at every character."""
        text = keras.Input(shape=(), dtype="string", name="text")
        return keras.Model(text, core(self.lookup_(text)), name=f"{core.name}_chars")

    def serving_spec(self):
        return tf.TensorSpec((None,), tf.string, name="text")

    def summary(self):
        return {"task": self.task.name, "text_col": self.text_col, "sequence_length": self.length,
                "characters": len(self.classes_)}
