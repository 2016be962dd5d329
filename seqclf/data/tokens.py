"""The token-tagging adapter: sentences as lists of tokens, a tag per token (part of speech, entities, chunks).

Input is a *sentence frame*, one row per sentence: what the CoNLL-U and CoNLL readers give,
or any table with a token-list and a tag-list column (lists in Parquet and JSON Lines; in CSV
a JSON array or whitespace-separated tokens per cell). Tokens are kept as given: the model
looks words up lowercased and reads each word's characters with their case, so a word never
seen in training still gets features from its spelling. Further per-token columns
(``--token-features``: a part of speech, morphological features) are looked up as they are and
embedded beside each word.

The exported model takes a batch of token lists padded with ``""`` (``(n_sentences,
n_tokens)`` strings; the server pads ragged lists itself) and returns a tag per token. With
token features it takes one such input per column, ``tokens`` and the columns' names.
"""

import json
import logging
import re
from collections import Counter

import numpy as np
import pandas as pd
import tensorflow as tf
import keras

from ..errors import ConfigError, DataError
from ..models.builders import HEADS
from ..models.crf import iob2_breaks
from ..models.string_layers import PADDING, TokenLookup
from ..padding import padded
from .adapters import Adapter, encode_labels, register_adapter
from .columns import TAG_NAMES, TOKEN_NAMES, find_column
from .vectors import embedding_inputs, pretrained, pretrained_vectors

log = logging.getLogger(__name__)
MISSING_TAGS = ("_", "")  # CoNLL-U writes "_" for a field it does not give
DEFAULT_MAX_TOKENS = 20_000
#: With pretrained vectors the vocabulary goes on past the training words into the file's most frequent ones, up to
#: this (padding and unknown included): a word training never saw still gets its meaning from the file.
PRETRAINED_MAX_TOKENS = 100_000
MIN_WORD_COUNT = 2
MIN_VOCABULARY = 100
MAX_CHARACTERS = 500
MAX_CHARS = 20  # characters of a word the character encoder reads
RESERVED = 2  # padding and unknown
BATCH = 1024
MAX_IOB2_BREAKS = 0.01  # share of training sentences that may break IOB2 under --constrain-bio
MAX_FEATURE_VALUES = 1000  # values of a token feature column kept (the most frequent; the rest are unknown)


@register_adapter
class TokenTaggingAdapter(Adapter):
    """Sentences of tokens with a tag per token; ``seqclf fit --task tag``.

    Examples
    --------
    >>> frame = pd.DataFrame({"tokens": [["The", "cat"], ["Dogs", "bark", "."]],
    ...                       "upos": [["DET", "NOUN"], ["NOUN", "VERB", "PUNCT"]]})
    >>> adapter = TokenTaggingAdapter()
    >>> examples = adapter.prepare(frame, "example")
    >>> adapter.tokens_col, adapter.label_col, adapter.lengths(examples).tolist()
    ('tokens', 'upos', [2, 3])
    """

    kind = "tokens"
    description = "token lists with a tag per token: CoNLL-U, CoNLL columns, tables of token and tag lists"
    def __init__(self, label_col=None, task=None, **options):
        super().__init__(label_col, task, **options)
        if self.char_encoder not in ("on", "off"):
            raise ConfigError(f"The 'char_encoder' parameter must be 'on' or 'off'. Got {self.char_encoder!r} instead.")
        if self.head not in HEADS:
            raise ConfigError(f"The 'head' parameter must be one of {', '.join(HEADS)}. Got {self.head!r} instead.")
        if self.constrain_bio and self.head != "crf":
            raise ConfigError("--constrain-bio constrains a CRF's transitions; add --head crf")
        self.token_features = feature_names(self.token_features)

    def input_column(self):
        return self.tokens_col or "tokens"

    @classmethod
    def detect(cls, frame):
        """Token data: a column of string lists, or token and tag columns by name; never a table with a
        column of number arrays (sensor series, whose per-step labels are string lists too)."""
        if any(_numeric_arrays(frame[column]) for column in frame.columns):
            return False
        return bool(_list_columns(frame)) or (
            find_column(frame, None, TOKEN_NAMES, "", "", "") is not None
            and find_column(frame, None, TAG_NAMES[:-2], "", "", "") is not None)

    def prepare(self, frame, source, labeled=True):
        """Check ``frame``; return it with token (and tag) lists, one row per sentence."""
        self.tokens_col = (find_column(frame, self.tokens_col, TOKEN_NAMES, "tokens", "--tokens-col", source)
                           or _only_list_column(frame, source))
        tokens = _lists(frame[self.tokens_col], source, self.tokens_col)
        lengths = tokens.map(len)
        if (lengths == 0).any():
            raise DataError(f"{source} has an empty sentence (sentence {_ids(frame, lengths == 0)}); "
                            f"remove it or give it tokens")
        empty = tokens.map(lambda t: PADDING in t)
        if empty.any():
            raise DataError(f"{source} has an empty token in sentence {_ids(frame, empty)}; tokens need at least "
                            f"one character")
        frame = frame.assign(**{self.tokens_col: tokens, **self._feature_lists(frame, lengths, source)})
        if labeled:
            self.label_col = self._tag_column(frame, source)
            tags = _lists(frame[self.label_col], source, self.label_col)
            mismatch = tags.map(len) != lengths
            if mismatch.any():
                first = int(np.argmax(mismatch.to_numpy()))
                raise DataError(f"{source}: sentence {_ids(frame, mismatch)} has {lengths.iloc[first]} tokens but "
                                f"{len(tags.iloc[first])} tags in column {self.label_col!r}; give one tag per token")
            missing = tags.map(lambda t: any(tag in MISSING_TAGS for tag in t))
            if missing.any():
                raise DataError(f"{source} has tokens without a tag in column {self.label_col!r} (sentence "
                                f"{_ids(frame, missing)}); every token needs its tag to train or evaluate "
                                f"(or choose another column with --tag-col)")
            frame = frame.assign(**{self.label_col: tags})
        return frame.reset_index(drop=True)

    def _feature_lists(self, frame, lengths, source):
        """The ``--token-features`` columns, as lists of strings of one value per token."""
        features = {}
        for name in self.token_features:
            if name not in frame.columns:
                raise DataError(f"--token-features names column {name!r}, which {source} lacks (its columns: "
                                f"{', '.join(map(str, frame.columns))})")
            if name == self.tokens_col:
                raise DataError(f"--token-features names the tokens column {name!r}; it is read already")
            values = _lists(frame[name], source, name)
            mismatch = values.map(len) != lengths
            if mismatch.any():
                first = int(np.argmax(mismatch.to_numpy()))
                raise DataError(f"{source}: sentence {_ids(frame, mismatch)} has {lengths.iloc[first]} tokens but "
                                f"{len(values.iloc[first])} values in column {name!r}; --token-features columns "
                                f"need one value per token")
            features[name] = values
        if len(self.input_names()) != len(set(self.input_names())):
            raise DataError(f"--token-features {','.join(self.token_features)}: the model's inputs would be named "
                            f"{', '.join(self.input_names())}; rename the columns so that no two share a name")
        return features

    def input_names(self):
        """The export's inputs: ``tokens`` and one per token feature column (its name, ``_`` for other characters
        than letters, digits and ``_``)."""
        return ["tokens"] + [re.sub(r"\W", "_", f"f_{name}" if name[:1].isdigit() else name, flags=re.ASCII)
                             for name in self.token_features]

    def _tag_column(self, frame, source):
        given = self.tag_col or self.label_col
        if given is not None and given in self.token_features:
            raise DataError(f"--token-features names the tag column {given!r}: the model would read the answers; "
                            f"leave it out of --token-features")
        candidates = frame.drop(columns=[c for c in self.token_features if given is None])  # never a feature
        column = find_column(candidates, given, TAG_NAMES, "tags", "--tag-col", source)
        if column is None:
            others = [c for c in _list_columns(candidates) if c != self.tokens_col]
            if len(others) != 1:
                raise DataError(f"could not find the tag column in {source} (its columns: {', '.join(frame.columns)}); "
                                f"name it one of {', '.join(TAG_NAMES)} or pass --tag-col NAME")
            column = others[0]
        return column

    def raw_labels(self, frame):
        return pd.Series([tag for tags in frame[self.label_col] for tag in tags], dtype=object)

    def split(self, frame, size, seed, source, part):
        """Sentences held out at random (each has many tags, so there is no one class to stratify by)."""
        if len(frame) < 3:
            raise DataError(f"{source} has {len(frame)} sentences; splitting off a {part} set needs at least 3 "
                            f"(or pass --{part} FILE)")
        held = frame.sample(n=max(1, int(round(size * len(frame)))), random_state=seed)
        return frame.drop(held.index), held

    def lengths(self, frame):
        """Tokens per sentence."""
        return frame[self.tokens_col].map(len).to_numpy()

    def step_columns(self, frame):
        """The token (and its feature values) at each step, for per-token prediction tables."""
        return {"token": np.concatenate(frame[self.tokens_col].to_numpy()),
                **{name: np.concatenate(frame[name].to_numpy()) for name in self.token_features}}

    def _fit_pretrained_vocabulary(self, counts):
        """The vocabulary and its vectors with ``--embeddings``: the training words seen twice or more, those seen
        once that the file has (their vector says what they are), then the file's first words (its most frequent, in
        most files) up to ``max_tokens`` (default :data:`PRETRAINED_MAX_TOKENS`). A word seen once that the file
        lacks stays unknown, so the unknown-word vector is still trained."""
        limit = (self.max_tokens or PRETRAINED_MAX_TOKENS) - RESERVED
        ranked = [w for w, _ in counts.most_common()][:limit]
        vectors = pretrained_vectors(self, [""] * RESERVED + ranked, RESERVED, extend=max(0, limit - len(ranked)))
        keep = vectors.found.copy()  # the file's words, and the training words seen often enough without it
        keep[:RESERVED] = True
        keep[RESERVED:RESERVED + len(ranked)] |= np.array([counts[w] >= MIN_WORD_COUNT for w in ranked], bool)
        self.words_ = [w for w, kept in zip(ranked + vectors.extra, keep[RESERVED:]) if kept]
        self._vectors, self.vectors_ = vectors.matrix[keep], vectors.record

    def targets(self, frame, source, unseen=None):
        return padded(encode_labels(self.raw_labels(frame), self.classes_, source, unseen), self.lengths(frame), -1,
                      "int64")

    def fit(self, train, source):
        """Learn the tags, the word vocabulary (lowercased) and the characters from the training split."""
        self.fit_labels(train, source)
        if self.constrain_bio:
            self._check_bio(train, source)
        words = Counter(token.lower() for tokens in train[self.tokens_col] for token in tokens)
        if self.embeddings:
            self._fit_pretrained_vocabulary(words)
        else:
            vocabulary = [w for w, _ in words.most_common()]
            frequent = [w for w, c in words.most_common() if c >= MIN_WORD_COUNT]
            if self.max_tokens is None and len(frequent) >= MIN_VOCABULARY:
                vocabulary = frequent  # words seen once stay unknown, so the unknown-word vector is trained too
            self.words_ = vocabulary[: (self.max_tokens or DEFAULT_MAX_TOKENS) - RESERVED]
            self._vectors, self.vectors_ = pretrained(self, [""] * RESERVED + self.words_, RESERVED)
        characters = Counter(c for tokens in train[self.tokens_col] for token in tokens for c in token)
        self.characters_ = [c for c, _ in characters.most_common(MAX_CHARACTERS)]
        lengths = self.lengths(train)
        self.length_stats_ = {"median": float(np.median(lengths)), "max": int(lengths.max())}
        self.lookup_ = TokenLookup(self.words_, self.characters_, MAX_CHARS, name="token_lookup")
        self.feature_values_ = {name: [value for value, _ in Counter(
            value for values in train[name] for value in values).most_common(MAX_FEATURE_VALUES)]
            for name in self.token_features}
        # each feature column's StringLookup (0 padding, 1 unseen), built once: encode runs on every batch pool
        self._lookups = [keras.layers.StringLookup(vocabulary=self.feature_values_[name], mask_token=PADDING,
                                                   name=f"{input_name}_lookup")
                         for name, input_name in zip(self.token_features, self.input_names()[1:])]
        return self

    def _check_bio(self, train, source):
        """``--constrain-bio`` needs IOB2 tags. A few training sentences that break IOB2 (CoNLL-2000 has 19 of
        8,936) are left out of the loss with a warning (:meth:`blank_iob2_breaks`): the constraints forbid their
        gold paths. More than :data:`MAX_IOB2_BREAKS` of them means another scheme (IOB1), refused."""
        others = [tag for tag in self.classes_ if tag != "O" and not tag.startswith(("B-", "I-"))]
        if others:
            raise DataError(f"--constrain-bio needs IOB2 tags (O, B-X, I-X); {source} also has "
                            f"{', '.join(map(repr, others[:5]))}: leave --constrain-bio out")
        breaks = iob2_breaks(list(train[self.label_col]))
        if not breaks:
            return
        number, step = breaks[0]
        tags = train[self.label_col].iloc[number]
        where = (f"sentence {_ids(train, pd.Series(np.arange(len(train)) == number))} at token {step + 1} "
                 f"({' '.join(tags[max(0, step - 1):step + 1])!r}: I-X must follow B-X or I-X)")
        if len(breaks) > MAX_IOB2_BREAKS * len(train):
            raise DataError(f"{source}: {len(breaks)} of {len(train)} training sentences break IOB2, the first {where}; "
                            f"IOB1 tags need --constrain-bio left out")
        log.warning("%s: %d training sentence(s) break IOB2, the first %s; --constrain-bio forbids their transitions, "
                    "so they are left out of the loss", source, len(breaks), where)

    def blank_iob2_breaks(self, frame, targets):
        """With ``--constrain-bio``: the targets ``(n, T)`` of sentences that break IOB2 all -1 (left out of the
        loss), since their gold paths are forbidden ones."""
        if self.constrain_bio:
            for number, _ in iob2_breaks(list(frame[self.label_col])):
                targets[number] = -1
        return targets

    def raw_inputs(self, frame):
        """Token strings ``(n_sentences, longest sentence)``, padded with ``""``; with token features, a dict of
        such arrays by input name (:meth:`input_names`)."""
        columns = [self.tokens_col] + self.token_features
        arrays = [padded(np.concatenate(frame[column].to_numpy()), self.lengths(frame), PADDING, object)
                  for column in columns]
        return dict(zip(self.input_names(), arrays)) if self.token_features else arrays[0]

    def encode(self, frame):
        """Word ids ``(n, T)``, with the character encoder character ids ``(n, T, MAX_CHARS)``, and the ids of
        each token feature ``(n, T)``: one array, or a list of them."""
        raw = self.raw_inputs(frame)
        tokens, features = (raw, []) if not self.token_features else (raw["tokens"], list(raw.values())[1:])
        parts = [self.lookup_(tf.constant(tokens[i:i + BATCH].astype(str))) for i in range(0, len(tokens), BATCH)]
        encoded = [np.concatenate([w.numpy() for w, _ in parts]).astype("int32")]
        if self.char_encoder == "on":
            encoded.append(np.concatenate([c.numpy() for _, c in parts]).astype("int32"))
        for lookup, values in zip(self._lookups, features):
            encoded.append(lookup(tf.constant(values.astype(str))).numpy().astype("int32"))
        return encoded if len(encoded) > 1 else encoded[0]

    def model_inputs(self):
        chars = {"char_vocab_size": len(self.characters_) + RESERVED, "max_chars": MAX_CHARS}
        crf = {"head": "crf", "tags": list(self.classes_), "constrain_bio": bool(self.constrain_bio)}
        features = {"feature_vocab_sizes": [len(self.feature_values_[name]) + RESERVED for name in self.token_features]}
        return {"vocab_size": len(self.words_) + RESERVED, **embedding_inputs(self),
                **(chars if self.char_encoder == "on" else {}), **(crf if self.head == "crf" else {}),
                **(features if self.token_features else {})}

    def model_defaults(self):
        """Dropout 0.5 as in the bi-LSTM taggers of the literature; a CRF is trained on its likelihood, unsmoothed."""
        return {"pooling": "last", "dropout": 0.5, **({"label_smoothing": 0.0} if self.head == "crf" else {})}

    def wrap(self, core):
        """A model from token strings ``(n_sentences, n_tokens)`` (``""`` = padding) to tag probabilities; with
        token features, from a dict of such inputs."""
        inputs = {name: keras.Input(shape=(None,), dtype="string", name=name) for name in self.input_names()}
        word_ids, char_ids = self.lookup_(inputs["tokens"])
        encoded = [word_ids] + ([char_ids] if self.char_encoder == "on" else [])
        encoded += [lookup(inputs[name]) for lookup, name in zip(self._lookups, self.input_names()[1:])]
        return keras.Model(inputs if self.token_features else inputs["tokens"],
                           core(encoded if len(encoded) > 1 else encoded[0]), name=f"{core.name}_tokens")

    def serving_spec(self):
        specs = {name: tf.TensorSpec((None, None), tf.string, name=name) for name in self.input_names()}
        return specs if self.token_features else specs["tokens"]

    def predicted_tags(self, frame, probabilities):
        """The most probable tag of each real token: one list per sentence."""
        best = np.asarray(self.classes_, dtype=object)[probabilities.argmax(axis=-1)]
        return [list(row[:n]) for row, n in zip(best, self.lengths(frame))]

    def summary(self):
        return {
            "task": self.task.name,
            "tokens_col": self.tokens_col,
            "tag_col": self.label_col,
            "vocabulary_size": len(self.words_) + RESERVED,
            "characters": len(self.characters_) if self.char_encoder == "on" else None,
            "token_features": {name: len(values) for name, values in self.feature_values_.items()},
            "training_lengths": self.length_stats_,
            "embeddings": getattr(self, "vectors_", None),
        }


def _lists(column, source, name):
    """Each cell as a list of strings: lists stay, JSON arrays are parsed, other strings split on whitespace."""
    def as_list(cell):
        if isinstance(cell, (list, tuple, np.ndarray)):
            return [str(item) for item in cell]
        if isinstance(cell, str):
            text = cell.strip()
            if text.startswith("["):
                try:
                    parsed = json.loads(text)
                except json.JSONDecodeError as error:
                    raise DataError(f"{source}: a cell of column {name!r} starts with '[' but is not a JSON array "
                                    f"({error.msg}): {text[:40]!r}") from None
                if isinstance(parsed, list):
                    return [str(item) for item in parsed]
            return text.split()
        if cell is None or (isinstance(cell, float) and np.isnan(cell)):
            return []
        raise DataError(f"{source}: column {name!r} holds {type(cell).__name__} values; it needs a list of tokens "
                        f"per row")
    return column.map(as_list)


def _list_columns(frame):
    """Columns whose first cells are lists of strings."""
    found = []
    for column in frame.columns:
        head = frame[column].head(20).dropna()
        if len(head) and head.map(lambda v: isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0
                                  and isinstance(v[0], str)).all():
            found.append(column)
    return found


def _numeric_arrays(column):
    head = column.head(20).dropna()
    return len(head) > 0 and head.map(lambda v: isinstance(v, np.ndarray) and v.dtype.kind in "fiub").all()


def _only_list_column(frame, source):
    columns = _list_columns(frame)
    if not columns:
        raise DataError(f"could not find the tokens column in {source} (its columns: {', '.join(frame.columns)}); "
                        f"name it one of {', '.join(TOKEN_NAMES)} or pass --tokens-col NAME")
    return columns[0]


def _ids(frame, mask):
    ids = frame["id"][mask.to_numpy()] if "id" in frame.columns else pd.Series(np.flatnonzero(mask.to_numpy()) + 1)
    shown = ", ".join(map(str, ids.iloc[:5]))
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def feature_names(value):
    """``--token-features`` as a list of column names: ``"column_2,xpos"``, a list of names, or None (none).

    Examples
    --------
    >>> feature_names("column_2, xpos"), feature_names(None), feature_names(["upos"])
    (['column_2', 'xpos'], [], ['upos'])
    """
    if value is None:
        return []
    names = [part.strip() for part in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    if not all(names) or len(set(names)) != len(names):
        raise ConfigError(f"--token-features takes column names separated by commas, each once, like column_2,xpos. "
                          f"Got {value!r} instead.")
    return names
