"""scikit-learn compatible estimators: the Python face of ``seqclf fit``.

``SequenceClassifier`` uses the same adapters, builders and training code as the CLI, which
itself trains through it. The constructor only stores its arguments (the CLI's option names in
snake_case); everything learned ends in ``_``.
"""

import tempfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .data import text  # noqa: F401  (registers the text adapter)
from .data.adapters import detect_adapter, get_adapter
from .data.columns import label_strings
from .data.splits import stratified_split
from .errors import ConfigError
from .models.builders import build_classifier
from .training import FitSettings, seed_everything, train

PREDICT_BATCH = 256
#: Constructor arguments that belong to the adapter of the chosen kind, not to the model.
ADAPTER_PARAMS = ("text_col", "tokens", "max_tokens", "max_length", "embedding_dim")


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """A recurrent many-to-one classifier: one label per sequence.

    Parameters are those of ``seqclf fit`` (see ``seqclf fit --help``): ``arch``, ``units``,
    ``dropout``, ``recurrent_dropout``, ``pooling``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``clipnorm``, ``class_weight``, ``patience``, ``label_smoothing``,
    ``val_size``, ``seed``, ``verbose``, the data ``kind`` and the adapter's settings
    (for text: ``text_col``, ``label_col``, ``tokens``, ``max_tokens``, ``max_length``,
    ``embedding_dim``).

    Attributes
    ----------
    classes_ : ndarray
        The class labels, as given in ``y`` (sorted as ``np.unique`` sorts them).
    history_ : dict
        Loss and accuracy per epoch, for training and validation.
    model_ : keras.Model
        The fitted model: raw input in, class probabilities out.

    Examples
    --------
    >>> clf = SequenceClassifier(units=(8,), epochs=1)
    >>> clf.fit(["a fine film", "dull stuff"] * 20, ["pos", "neg"] * 20).classes_
    array(['neg', 'pos'], dtype=object)
    >>> clf.predict(["a fine film"]).shape
    (1,)
    """

    def __init__(self, arch="bigru", units=(64,), dropout=0.5, recurrent_dropout=0.0, pooling="last", epochs=20,
                 batch_size=64, learning_rate=1e-3, clipnorm=1.0, class_weight="balanced", patience=3,
                 label_smoothing=0.1, val_size=0.1, seed=0, verbose=0, kind="auto", text_col=None, label_col=None,
                 tokens="word", max_tokens=None, max_length=None, embedding_dim=64):
        self.arch = arch
        self.units = units
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.pooling = pooling
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.clipnorm = clipnorm
        self.class_weight = class_weight
        self.patience = patience
        self.label_smoothing = label_smoothing
        self.val_size = val_size
        self.seed = seed
        self.verbose = verbose
        self.kind = kind
        self.text_col = text_col
        self.label_col = label_col
        self.tokens = tokens
        self.max_tokens = max_tokens
        self.max_length = max_length
        self.embedding_dim = embedding_dim

    def settings(self):
        """The model and training settings as a checked :class:`~seqclf.training.FitSettings`."""
        return FitSettings(**{name: getattr(self, name) for name in FitSettings.__dataclass_fields__
                              if hasattr(self, name)})

    def make_adapter(self, frame, source="X"):
        """The adapter of ``self.kind`` (detected from ``frame`` for ``"auto"``), with this estimator's settings."""
        cls = detect_adapter(frame, source) if self.kind == "auto" else get_adapter(self.kind)
        options = {name: getattr(self, name) for name in ADAPTER_PARAMS if name in cls.option_names()}
        return cls(label_col=self.label_col, **options)

    def fit(self, X, y=None, validation_data=None, source="X"):
        """Learn the preprocessing and the model from ``X`` and ``y``; return ``self``.

        Parameters
        ----------
        X : list, array or Series of str, or DataFrame
            Texts; or a table whose columns the adapter finds (``text_col``, ``label_col``).
        y : array-like, optional
            Labels; optional when ``X`` is a table holding them.
        validation_data : (X_val, y_val) or DataFrame, optional
            Data for early stopping; by default a stratified ``val_size`` share of ``X``.
        source : str
            How error messages name ``X`` (the CLI passes the file name).
        """
        settings = self.settings()
        seed_everything(settings.seed)
        frame = _as_frame(X, y, self.text_col or "text", self.label_col or "label")
        adapter = self.make_adapter(frame, source)
        frame = adapter.prepare(frame, source)
        if validation_data is None:
            labels = label_strings(frame[adapter.label_col])
            frame, val_frame = stratified_split(frame, labels, settings.val_size, settings.seed, source, "val")
        else:
            val_X, val_y = validation_data if isinstance(validation_data, tuple) else (validation_data, None)
            val_frame = adapter.prepare(_as_frame(val_X, val_y, adapter.text_col, adapter.label_col), "validation_data")
        adapter.fit(frame, source)
        core = build_classifier(
            settings.arch, n_classes=len(adapter.classes_), units=settings.units, dropout=settings.dropout,
            recurrent_dropout=settings.recurrent_dropout, pooling=settings.pooling, name=settings.arch,
            **adapter.model_inputs(),
        )
        self.training_ = train(
            core, adapter.encode(frame), adapter.targets(frame, source),
            adapter.encode(val_frame), adapter.targets(val_frame, "validation_data"),
            epochs=settings.epochs, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
            clipnorm=settings.clipnorm, class_weight=settings.class_weight, patience=settings.patience,
            label_smoothing=settings.label_smoothing, verbose=self.verbose,
        )
        self.classes_ = np.unique(frame[adapter.label_col].to_numpy())
        if self.classes_.dtype.kind in "US":
            self.classes_ = self.classes_.astype(object)
        self.adapter_ = adapter
        self.model_ = adapter.wrap(core)
        self.history_ = self.training_.history
        self.n_parameters_ = int(core.count_params())
        self.rows_ = {"train": len(frame), "val": len(val_frame)}
        self.class_counts_ = label_strings(frame[adapter.label_col]).value_counts().to_dict()
        return self

    def predict_proba(self, X):
        """Class probabilities, ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        frame = self.adapter_.prepare(_as_frame(X, None, self.adapter_.text_col, None), "X", labeled=False)
        return predict_proba(self.model_, self.adapter_, frame)

    def predict(self, X):
        """The most probable class of each sequence, as given in ``y``."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def save(self, path):
        """Write a run directory (model, labels, SavedModel export, config) that ``seqclf.load`` and the CLI read."""
        from .runs import write_run

        check_is_fitted(self, "model_")
        return write_run(self, path)

    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = _model_bytes(state["model_"])
            adapter = state["adapter_"]
            state["adapter_"] = {"kind": adapter.kind, "config": adapter.get_config(), "classes": adapter.classes_}
            state.pop("training_", None)
        return state

    def __setstate__(self, state):
        if "model_" in state:
            state["model_"] = _model_from_bytes(state["model_"])
            saved = state["adapter_"]
            state["adapter_"] = get_adapter(saved["kind"])(**saved["config"])
            state["adapter_"].classes_ = saved["classes"]
        self.__dict__.update(state)

    def _repr_html_(self):
        if not hasattr(self, "model_"):
            return f"<pre>{self!r} (not fitted)</pre>"
        last = {k: v[-1] for k, v in self.history_.items()}
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in (
            ("architecture", f"{self.arch} {list(self.units)} pooling={self.pooling}"),
            ("parameters", f"{self.n_parameters_:,}"),
            ("classes", ", ".join(map(str, self.classes_))),
            ("epochs", f"{len(self.history_['loss'])}"),
            ("last epoch", ", ".join(f"{k} {v:.4f}" for k, v in last.items())),
        ))
        return f"<table><caption>SequenceClassifier</caption>{rows}</table>"


def load(path):
    """Read a run directory written by ``SequenceClassifier.save`` or ``seqclf fit``.

    Examples
    --------
    >>> clf = load("runs/mr")  # doctest: +SKIP
    >>> clf.predict(["a gripping, funny film"])  # doctest: +SKIP
    array(['pos'], dtype=object)
    """
    from .runs import load_run

    model, adapter, config = load_run(path)
    settings = dict(config["settings"])
    settings.pop("test_size", None)
    params = {**settings, "kind": config["kind"], **config["adapter"]}
    params["units"] = tuple(params["units"])
    estimator = SequenceClassifier(**{k: v for k, v in params.items() if k in SequenceClassifier._get_param_names()})
    estimator.model_ = model
    estimator.adapter_ = adapter
    estimator.classes_ = np.asarray(adapter.classes_, dtype=object)
    estimator.history_ = _read_history(Path(path))
    estimator.n_parameters_ = config["model"]["n_parameters"]
    return estimator


def predict_proba(model, adapter, frame):
    """Class probabilities of a fitted ``model`` for the rows of ``frame``, in batches."""
    return model.predict(adapter.raw_inputs(frame), batch_size=PREDICT_BATCH, verbose=0)


def _as_frame(X, y, text_col, label_col):
    """A table from ``X`` (texts, or a table) and ``y`` (labels, or None): texts go to ``text_col``."""
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
    elif isinstance(X, (str, bytes)):
        raise ConfigError("X must be a list of texts, not a single string; wrap it: [text]")
    else:
        frame = pd.DataFrame({text_col: list(X)})
    if y is not None:
        frame = frame.assign(**{label_col: list(y)})
    return frame


def _model_bytes(model):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _model_from_bytes(data):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.keras"
        path.write_bytes(data)
        return keras.saving.load_model(path, safe_mode=True)


def _read_history(run_dir):
    path = run_dir / "history.csv"
    return pd.read_csv(path, index_col=0).to_dict(orient="list") if path.exists() else {}
