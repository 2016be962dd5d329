"""The adapter slot: one adapter per kind of data, chosen by name or detected from the table.

An adapter learns everything it needs from the training split only (column roles, class
names, vocabularies, scalers), turns tables into model inputs and targets, and supplies the
preprocessing that goes inside the exported model so that it takes raw input. New kinds of
data register here with :func:`register_adapter` and need no change to the CLI.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .columns import LABEL_NAMES, check_labels, label_strings, require_column
from .splits import group_split

ADAPTERS = {}


@dataclass(frozen=True)
class AdapterOption:
    """A setting an adapter accepts; the CLI shows it as ``--name-with-dashes``."""

    name: str
    help: str
    type: type = str
    default: object = None
    choices: tuple = ()

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


def register_adapter(cls):
    """Class decorator adding an adapter to the registry under ``cls.kind``."""
    ADAPTERS[cls.kind] = cls
    return cls


def get_adapter(kind):
    """Return the adapter class registered as ``kind``."""
    if kind not in ADAPTERS:
        raise ConfigError(f"unknown kind {kind!r}; choose one of: auto, {', '.join(ADAPTERS)}")
    return ADAPTERS[kind]


def detect_adapter(frame, source):
    """Return the first registered adapter class whose ``detect`` accepts ``frame``."""
    for cls in ADAPTERS.values():
        if cls.detect(frame):
            return cls
    raise DataError(
        f"could not tell what kind of data {source} holds (columns: {', '.join(frame.columns)}); "
        f"pass --kind {'|'.join(ADAPTERS)}"
    )


class Adapter:
    """Base class of the adapters. ``prepare`` returns *examples*, one row per sequence the model sees.

    Subclasses set ``kind``, ``description``, ``options`` and ``tasks`` and implement ``detect``,
    ``prepare``, ``fit``, ``encode``, ``raw_inputs``, ``wrap``, ``serving_spec``, ``model_inputs``
    and ``summary``. The defaults here fit one label per row; an adapter whose rows belong
    together (windows of one series) or carry a label per step overrides ``groups``,
    ``raw_labels``, ``split_labels``, ``targets`` and ``index``; one whose rows are ordered in
    time overrides ``split``, and ``report`` adds results such as baselines to the test metrics.
    """

    kind = None
    description = ""
    options = ()
    tasks = ("many-to-one",)
    step_table = True  # per-step models: test_predictions.csv gets a row per step

    def __init__(self, label_col=None, task="many-to-one"):
        self.label_col = label_col
        self.task = task
        if task not in self.tasks:
            raise ConfigError(f"--task {task} does not apply to {self.kind} data; it takes {', '.join(self.tasks)}")

    @classmethod
    def option_names(cls):
        return [option.name for option in cls.options]

    def get_config(self):
        """The constructor arguments, as written to ``config.json``."""
        return {"label_col": self.label_col, "task": self.task, **{name: getattr(self, name) for name in self.option_names()}}

    def prepare(self, frame, source, labeled=True):
        """Check ``frame`` and fix the column roles; return the rows to use."""
        if labeled:
            self.label_col = require_column(frame, self.label_col, LABEL_NAMES, "label", "--label-col", source)
            check_labels(frame, self.label_col, source)
        return frame

    def fit_labels(self, train, source):
        """Learn the class names from the training split (sorted as ``np.unique`` sorts them)."""
        self.classes_ = self.check_classes(train, source)
        return self

    def restore(self, summary):
        """Take back what ``fit`` learned beyond the model from a run's ``data_summary`` (class counts)."""
        self.class_counts_ = summary.get("class_counts", {})
        return self

    def model_defaults(self):
        """What ``auto`` means for ``pooling``, ``dropout``, ``class_weight`` and ``label_smoothing`` here.

        Keys left out take the defaults of :data:`~seqclf.training.AUTO_TRAINING` (balanced class
        weights, label smoothing 0.1). Text: measured on MR.
        """
        return {"pooling": "last", "dropout": 0.5}

    def raw_labels(self, frame):
        """The labels of ``frame`` as given: one per row (adapters with per-step labels flatten them)."""
        return frame[self.label_col]

    def step_columns(self, frame):
        """Extra columns of per-step prediction tables (the token tagger adds each step's token); none by default."""
        return {}

    def label_counts(self, frame):
        """How often each class occurs in ``frame``: ``{class name: count}``."""
        return label_strings(self.raw_labels(frame)).value_counts().to_dict()

    def split_labels(self, frame):
        """One label string per row, for stratified splits."""
        return label_strings(frame[self.label_col])

    def groups(self, frame):
        """Which rows belong together and must stay on one side of a split (``None``: each row alone)."""
        return None

    def split(self, frame, size, seed, source, part):
        """``(rest, held_out)`` with a ``size`` share held out: stratified by class, keeping groups whole."""
        return group_split(frame, self.split_labels(frame), self.groups(frame), size, seed, source, part)

    def report(self, frame, probabilities):
        """Extra test results beside the metrics (the stock adapter adds baselines); none by default."""
        return {}

    def extra_metrics(self, frame, probabilities):
        """Measures beside accuracy and F1 in every evaluation (validation, test, ``seqclf evaluate``): entity
        scores for BIO tags, cross-entropy for a language model; none by default."""
        return {}

    def index(self, frame):
        """What identifies each row in prediction tables: the ``id`` column, else the row number from 1."""
        ids = frame["id"].to_numpy() if "id" in frame.columns else np.arange(1, len(frame) + 1)
        return pd.DataFrame({"id": ids})

    def check_classes(self, frame, source):
        """The class names of ``frame``; fewer than two is an error."""
        labels = self.raw_labels(frame)
        try:
            classes = list(dict.fromkeys(label_strings(pd.Series(np.unique(labels.to_numpy())))))
        except TypeError:  # lists, or numbers mixed with strings: no order, no class names
            kinds = ", ".join(sorted({type(v).__name__ for v in labels}))
            raise DataError(f"{source}: the labels in column {self.label_col!r} mix kinds of values ({kinds}); "
                            f"give every label as a string or every label as a number") from None
        if not classes:
            raise DataError(f"{source} has no labels in column {self.label_col!r}")
        if len(classes) < 2:
            raise DataError(
                f"{source} has only one class ({classes[0]!r}) in column {self.label_col!r}; "
                f"a classifier needs at least two (is --label-col the right column?)"
            )
        return classes

    def targets(self, frame, source):
        """Class indices of the rows of ``frame`` (labels unknown to the model are an error)."""
        return encode_labels(label_strings(frame[self.label_col]), self.classes_, source)


def padded(flat, lengths, fill, dtype):
    """The values of ``flat`` laid out as one row per sequence of ``lengths``, ``fill`` after each one's end.

    Examples
    --------
    >>> padded(np.array([1, 2, 3]), np.array([2, 1]), -1, "int64").tolist()
    [[1, 2], [3, -1]]
    """
    rows = np.full((len(lengths), np.max(lengths, initial=1)), fill, dtype=dtype)
    rows[np.arange(rows.shape[1]) < np.asarray(lengths)[:, None]] = flat
    return rows


def encode_labels(labels, classes, source):
    """Map string labels to indices into ``classes``; unknown labels are an error."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(
            f"{source} has labels the training data does not: {', '.join(map(repr, unknown[:5]))}; "
            f"the model knows {', '.join(map(repr, classes))}"
        )
    return labels.map(index).to_numpy(dtype="int64")
