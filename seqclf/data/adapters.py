"""The adapter slot: one adapter per kind of data, chosen by name or detected from the table.

An adapter learns everything it needs from the training split only (column roles, class
names, vocabularies, scalers), turns tables into model inputs and targets, and supplies the
preprocessing that goes inside the exported model so that it takes raw input. New kinds of
data register here with :func:`register_adapter` and need no change to the CLI.
"""

import importlib

import numpy as np
import pandas as pd

from .. import tasks
from ..errors import ConfigError, DataError
from ..params import PARAMS, kind_options
from .columns import LABEL_NAMES, check_labels, label_strings, require_column
from .splits import group_split

ADAPTERS = {}
#: The modules of the kinds of data, imported on first use of the registry. ``--kind auto`` tries them in this order
#: (stock first: its date and price columns are the most specific, and dates like "Jan 1 2000" would otherwise look
#: like text; token lists and source/target pairs before text, whose names or wordy columns they may share). The
#: character language model (``chars``) is chosen by name only (``--task next-char``).
KIND_MODULES = ("stock", "tokens", "pairs", "text", "sensor", "chars")


def register_adapter(cls):
    """Class decorator adding an adapter to the registry under ``cls.kind``."""
    ADAPTERS[cls.kind] = cls
    return cls


def registered():
    """The registry ``{kind: adapter class}``, with the kinds of :data:`KIND_MODULES` loaded, in that order (then
    any registered from elsewhere), whatever order they were first imported in."""
    for name in KIND_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    order = {f"{__package__}.{name}": i for i, name in enumerate(KIND_MODULES)}
    ranked = sorted(ADAPTERS.items(), key=lambda item: order.get(item[1].__module__, len(order)))
    ADAPTERS.clear()
    ADAPTERS.update(ranked)
    return ADAPTERS


def get_adapter(kind):
    """Return the adapter class registered as ``kind``."""
    if kind not in registered():
        raise ConfigError(f"unknown kind {kind!r}; choose one of: auto, {', '.join(ADAPTERS)}")
    return ADAPTERS[kind]


def detect_adapter(frame, source):
    """Return the first registered adapter class whose ``detect`` accepts ``frame``."""
    for cls in registered().values():
        if cls.detect(frame):
            return cls
    raise DataError(
        f"could not tell what kind of data {source} holds (columns: {', '.join(frame.columns)}); "
        f"pass --kind {'|'.join(ADAPTERS)}"
    )


class TasksOf:
    """``Adapter.tasks``: the names of the registered tasks that train on the adapter's kind."""

    def __get__(self, adapter, cls):
        return tasks.tasks_for(cls.kind)


class Adapter:
    """Base class of the adapters. ``prepare`` returns *examples*, one row per sequence the model sees.

    Subclasses set ``kind`` and ``description`` and implement ``detect``, ``prepare``, ``fit``,
    ``encode``, ``raw_inputs``, ``wrap``, ``serving_spec``, ``model_inputs`` and ``summary``; their
    settings are the ``kind`` parameters of :mod:`seqclf.params` that name their kind. The defaults
    here fit one label per row; an adapter whose rows belong together (windows of one series) or
    carry a label per step overrides ``groups``, ``raw_labels``, ``split_labels``, ``targets`` and
    ``index``; one whose rows are ordered in time overrides ``split`` and ``walk_forward_folds``, and
    ``report``, ``report_lines`` and ``write_plots`` add results such as baselines to a run.
    """

    kind = None
    description = ""
    tasks = TasksOf()
    reads_texts = False  #: its input is one text per row (``seqclf predict --text`` applies)

    def __init__(self, label_col=None, task=None, **options):
        self.label_col = label_col
        self.task = tasks.resolve(task, self.kind)
        unknown = sorted(set(options) - set(self.option_names()))
        if unknown:
            raise ConfigError(f"{', '.join(PARAMS[n].flag if n in PARAMS else n for n in unknown)} do(es) not apply "
                              f"to --kind {self.kind}; its settings are {', '.join(self.option_names()) or 'none'}")
        for name in self.option_names():
            setattr(self, name, options.get(name, PARAMS[name].default))

    @property
    def per_step(self):
        """Whether the task labels every step."""
        return self.task.per_step

    @classmethod
    def option_names(cls):
        return kind_options(cls.kind)

    def get_config(self):
        """The constructor arguments, as written to ``config.json``."""
        return {"label_col": self.label_col, "task": self.task.name,
                **{name: getattr(self, name) for name in self.option_names()}}

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
        """What ``auto`` means for ``pooling`` and ``dropout`` here (the task may add ``class_weight`` and
        ``label_smoothing``; left out, they take :data:`~seqclf.training.AUTO_TRAINING`). Text: measured on MR.
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

    @classmethod
    def report_lines(cls, metrics):
        """Lines for ``seqclf evaluate`` and ``seqclf info`` about what :meth:`report` added; none by default."""
        return []

    def write_plots(self, directory, frame, probabilities):
        """Plots of the test results beyond the task's (the stock adapter's strategy curves); none by default."""

    def walk_forward_folds(self, frame, folds, source):
        """Expanding-window ``(earlier, test)`` pairs, for data ordered in time only."""
        raise ConfigError(f"--walk-forward applies to data ordered in time (--kind stock), not to {self.kind} data")

    def period(self, frame):
        """The first and last date of ``frame``'s examples, for data ordered in time; ``None`` otherwise."""
        return None

    def input_column(self):
        """The column a list given as the Python API's ``X`` goes to (texts, token lists); sequences of numbers go to
        ``values``."""
        return "text"

    def label_strings(self, frame):
        """Every label of ``frame`` (one per row, or per step) as a string."""
        return label_strings(self.raw_labels(frame))

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

    def targets(self, frame, source, unseen=None):
        """Class indices of the rows of ``frame``; a label unknown to the model is an error, or ``unseen``."""
        return encode_labels(label_strings(frame[self.label_col]), self.classes_, source, unseen)


def encode_labels(labels, classes, source, unseen=None):
    """Map string labels to indices into ``classes``; unknown labels are an error, or ``unseen`` if it is given."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown and unseen is not None:
        return labels.map(index).fillna(unseen).to_numpy(dtype="int64")
    if unknown:
        raise DataError(
            f"{source} has labels the training data does not: {', '.join(map(repr, unknown[:5]))}; "
            f"the model knows {', '.join(map(repr, classes))}"
        )
    return labels.map(index).to_numpy(dtype="int64")
