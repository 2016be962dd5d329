"""The sequence-to-sequence adapter: a table of source and target texts (``--task seq2seq``).

Each row pairs a source with one target (a word and its pronunciation, a sentence and its
translation). The columns are found as ``source``/``target``, ``input``/``output`` or
``src``/``tgt`` (``--source-col``/``--target-col`` otherwise); a two-column table whose header
names neither pair is read as a headerless pair file, its first line being data. Each side is
cut into characters, words or space-separated symbols (``--source-tokens``, ``--target-tokens``)
and gets its vocabulary from the training split. Rows whose source repeats are one source with
several references: they stay on one side of every split and are scored together.

The model reads source ids and the previous target symbols; the exported model reads the
raw source strings and decodes (:mod:`seqclf.models.seq2seq`).
"""

import logging

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..errors import DataError
from ..models.seq2seq import END, SPECIALS, START, UNKNOWN
from ..models.string_layers import SymbolLookup, split_symbols
from ..padding import padded
from .adapters import Adapter, register_adapter
from .columns import blank, row_list

log = logging.getLogger(__name__)
PAIR_NAMES = (("source", "target"), ("input", "output"), ("src", "tgt"))
PERCENTILE = 99  # default caps: the 99th percentile of the training lengths, as for texts


def symbols_of(texts, unit):
    """Each text cut into ``unit`` symbols, as lists of str (the same cut as the model's)."""
    if not len(texts):
        return []
    return [[s.decode("utf-8") for s in row] for row in split_symbols(tf.constant(list(texts)), unit).to_list()]


def joiner(unit):
    """What joins output symbols into a string: nothing between characters, a space between words or symbols."""
    return "" if unit == "char" else " "


@register_adapter
class PairsAdapter(Adapter):
    """Source and target texts, one pair per row.

    Examples
    --------
    >>> adapter = PairsAdapter(target_tokens="space")
    >>> frame = adapter.prepare(pd.DataFrame({"input": ["cat", "dog"], "output": ["K AE T", "D AO G"]}), "example")
    >>> adapter.source_col, adapter.target_col, list(frame.columns)
    ('input', 'output', ['id', 'source', 'target'])
    """

    kind = "pairs"
    description = "source and target texts, one pair per row (--task seq2seq)"
    reads_texts = True

    @classmethod
    def detect(cls, frame):
        """A table with a source and a target column of a known pair of names."""
        return _named_pair(frame) is not None

    def input_column(self):
        return "source"

    def prepare(self, frame, source, labeled=True):
        """Find the columns; return ``id``, ``source`` (and ``target``) as strings, after checking every row."""
        frame = self._columns(frame, source, labeled)
        texts = frame[self.source_col]
        self._check_text(frame, self.source_col, "source", source)
        table = pd.DataFrame({"id": frame["id"].to_numpy() if "id" in frame.columns and self.source_col != "id"
                              else np.arange(1, len(frame) + 1), "source": texts.astype(str).to_numpy(dtype=object)})
        if labeled:
            self._check_text(frame, self.target_col, "target", source)
            table["target"] = frame[self.target_col].astype(str).to_numpy(dtype=object)
        return table

    def _columns(self, frame, source, labeled):
        """Fix ``source_col`` and ``target_col``; a two-column table without either pair's names has no header."""
        found = _named_pair(frame)
        if self.source_col is None and found:
            self.source_col = found[0]
        if self.target_col is None and found and labeled:
            self.target_col = found[1]
        if self.source_col is None and len(frame.columns) == 2 and not found:
            log.info("%s: no source/target header; reading its two columns as source and target, the first line "
                     "being data (or pass --source-col and --target-col)", source)
            first = pd.DataFrame([list(frame.columns)], columns=list(frame.columns))
            frame = pd.concat([first, frame], ignore_index=True)
            self.source_col, self.target_col = frame.columns
        if self.source_col is None and len(frame.columns) == 1 and not labeled:
            self.source_col = frame.columns[0]  # prediction from one column of texts
        for role, column, option in (("source", self.source_col, "--source-col"),
                                     ("target", self.target_col, "--target-col")):
            if role == "target" and not labeled:
                continue
            if column is None:
                names = ", ".join("/".join(pair) for pair in PAIR_NAMES)
                raise DataError(f"could not find the {role} column in {source} (its columns: "
                                f"{', '.join(map(str, frame.columns))}); name the columns {names} or pass {option} NAME")
            if column not in frame.columns:
                raise DataError(f"{source} has no {role} column {column!r} (its columns: "
                                f"{', '.join(map(str, frame.columns))}); check {option}")
        return frame

    @staticmethod
    def _check_text(frame, column, role, source):
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)) or \
                not values.dropna().map(lambda v: isinstance(v, str)).all():
            kinds = ", ".join(sorted({type(v).__name__ for v in values.dropna()}))
            raise DataError(f"{source}: the {role} column {column!r} holds {kinds or 'no'} values, not text; "
                            f"a sequence-to-sequence table pairs texts (quote numbers to use them as text)")
        empty = blank(values)
        if empty.any():
            what = "a target (training and evaluation rows need one)" if role == "target" else "text"
            raise DataError(f"{source} has no {what} in column {column!r} at {row_list(empty)}; fill them in or "
                            f"remove those rows")

    # --- labels, splits --------------------------------------------------------------------------

    def raw_labels(self, frame):
        return frame["target"]

    def label_strings(self, frame):
        return frame["target"]

    def check_classes(self, frame, source, symbols=None):
        """The target symbols of ``frame`` (``symbols``: its targets already cut); a single distinct target is an
        error (nothing to learn)."""
        distinct = frame["target"].unique()
        if len(distinct) < 2:
            raise DataError(f"{source} has one distinct target only ({distinct[0]!r} for every row); a "
                            f"sequence-to-sequence model needs different targets to learn from")
        return sorted({s for row in (symbols or symbols_of(distinct, self.target_tokens)) for s in row})

    def label_counts(self, frame):
        """How often each target symbol occurs (``class_counts`` of the run's summary)."""
        flat = pd.Series([s for row in symbols_of(frame["target"], self.target_tokens) for s in row], dtype=object)
        return flat.value_counts().to_dict()

    def groups(self, frame):
        return frame["source"]

    def split(self, frame, size, seed, source, part):
        """Hold out a ``size`` share of the distinct sources at random: a source's references stay together."""
        sources = frame["source"].unique()
        n_held = max(1, int(round(size * len(sources))))
        if len(sources) - n_held < 2:
            raise DataError(f"{source} holds {len(sources)} distinct sources, too few to hold out a {part} share of "
                            f"{size:g}; add rows or pass --{part} FILE")
        held = set(np.random.default_rng(seed).permutation(sources)[:n_held])
        chosen = frame["source"].isin(held).to_numpy()
        return frame[~chosen], frame[chosen]

    def references(self, frame):
        """``(sources, references)``: each distinct source once, in order of appearance, with all its targets."""
        grouped = frame.groupby("source", sort=False)["target"].agg(lambda v: list(dict.fromkeys(v)))
        return grouped.index.to_numpy(dtype=object), list(grouped)

    # --- learning and encoding -------------------------------------------------------------------

    def fit(self, train, source):
        """Vocabularies and length caps from the training split; targets over their cap are dropped (counted)."""
        source_symbols = symbols_of(train["source"], self.source_tokens)
        target_symbols = symbols_of(train["target"], self.target_tokens)
        self.max_source_length_ = self.max_source_length or _cap(source_symbols)
        self.max_target_length_ = self.max_target_length or _cap(target_symbols)
        too_long = sum(len(t) > self.max_target_length_ for t in target_symbols)
        if too_long == len(train):
            raise DataError(f"{source}: every training target is longer than --max-target-length "
                            f"{self.max_target_length_}; raise it (the longest has {max(map(len, target_symbols))})")
        if too_long:
            log.warning("%s: %d of %d training targets are longer than %d symbols (--max-target-length) and are left "
                        "out of training", source, too_long, len(train), self.max_target_length_)
        counts = pd.Series([s for row in source_symbols for s in row], dtype=object).value_counts()
        self.source_symbols_ = sorted(counts.index, key=lambda s: (-counts[s], s))
        self.classes_ = list(SPECIALS) + self.check_classes(train, source, target_symbols)
        self.lookup_ = SymbolLookup(self.source_symbols_, self.source_tokens, self.max_source_length_,
                                    name="source_lookup")
        return self

    def restore(self, summary):
        super().restore(summary)
        self.max_source_length_ = summary["max_source_length"]
        self.max_target_length_ = summary["max_target_length"]
        return self

    def _target_ids(self, frame):
        """Target symbol ids ``(n, longest + 1)`` ending in the end symbol, -1 after it; -2 for a symbol training never
        saw; and which rows fit the length cap."""
        index = {name: i for i, name in enumerate(self.classes_) if i >= len(SPECIALS)}
        rows = symbols_of(frame["target"], self.target_tokens)
        fits = np.array([len(r) <= self.max_target_length_ for r in rows], dtype=bool)
        ids = [[index.get(s, -2) for s in r] + [END] for r, ok in zip(rows, fits) if ok]
        flat = np.fromiter((i for row in ids for i in row), "int64")
        return padded(flat, [len(row) for row in ids], -1, "int64"), fits

    def encode(self, frame):
        """``[source ids, previous symbols]`` of the rows whose target fits the cap: the start symbol, then the target
        (unknown symbols as 1), 0 after it."""
        ids, fits = self._target_ids(frame)
        previous = np.concatenate([np.full((len(ids), 1), START), ids[:, :-1]], axis=1)
        previous = np.where(previous == -2, UNKNOWN, np.where((previous < 0) | (previous == END), 0, previous))
        sources = self.lookup_(tf.constant(frame["source"].to_numpy(dtype=object)[fits].astype(str))).numpy()
        return [sources, previous]

    def targets(self, frame, source, unseen=None):
        """The next symbol at each step (the end symbol last), -1 after it and for a symbol training never saw."""
        ids, _ = self._target_ids(frame)
        return np.where(ids == -2, -1, ids)

    def raw_inputs(self, frame):
        return frame["source"].to_numpy(dtype=object)

    def model_inputs(self):
        return {"source_vocab_size": len(self.source_symbols_) + 2, "target_vocab_size": len(self.classes_),
                "embedding_dim": self.embedding_dim, "decoder": self.decoder, "attention": self.attention}

    def model_defaults(self):
        """Dropout 0.1, as for other inputs of few symbols."""
        return {"pooling": "last", "dropout": 0.1}

    def wrap(self, core):
        """The training model reading raw source strings: ``[source texts (n,), previous symbols (n, T)]``."""
        texts = keras.Input(shape=(), dtype="string", name="source")
        previous = keras.Input(shape=(None,), dtype="int64", name="previous_symbols")
        return keras.Model([texts, previous], core([self.lookup_(texts), previous]), name=f"{core.name}_pairs")

    def serving_spec(self):
        return tf.TensorSpec((None,), tf.string, name="source")

    def summary(self):
        return {"task": self.task.name, "source_col": self.source_col, "target_col": self.target_col,
                "source_tokens": self.source_tokens, "target_tokens": self.target_tokens,
                "max_source_length": self.max_source_length_, "max_target_length": self.max_target_length_,
                "source_symbols": len(getattr(self, "source_symbols_", [])),
                "target_symbols": len(self.classes_) - len(SPECIALS)}



def _named_pair(frame):
    """The first known pair of column names ``frame`` has (any case), or ``None``."""
    by_lower = {str(column).lower(): column for column in frame.columns}
    for pair in PAIR_NAMES:
        if all(name in by_lower for name in pair):
            return tuple(by_lower[name] for name in pair)
    return None


def _cap(rows):
    """The 99th percentile of the rows' lengths, at least 1."""
    return max(1, int(np.ceil(np.percentile([len(r) for r in rows], PERCENTILE)))) if rows else 1
