"""scikit-learn compatible estimators: the Python face of ``seqclf fit``.

``SequenceClassifier`` uses the same adapters, builders and training code as the CLI, which
itself trains through it. The constructor only stores its arguments (the CLI's option names in
snake_case); everything learned ends in ``_``.
"""

import inspect
import json
import re
import tempfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import distribute
from .data.adapters import detect_adapter, get_adapter
from .data.shards import RowStream
from .errors import ConfigError, DataError
from .rundir import load_model
from .models.archs import get_architecture
from .models.builders import build_classifier
from .training import AUTO_TRAINING, FitSettings, Streamed, seed_everything, train

PREDICT_BATCH = 256
#: Constructor arguments that belong to the adapter of the chosen kind, not to the model.
ADAPTER_PARAMS = ("text_col", "tokens", "max_tokens", "max_length", "embedding_dim",
                  "series_col", "time_col", "channels", "window", "stride", "window_label", "downsample",
                  "date_col", "ticker_col", "features", "horizon", "threshold", "tokens_col", "tag_col", "char_encoder")


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """A recurrent classifier: one label per sequence (many-to-one) or per step (many-to-many).

    Parameters are those of ``seqclf fit`` (see ``seqclf fit --help``): ``arch``, ``units``,
    ``dropout``, ``recurrent_dropout``, ``pooling``, ``task``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``clipnorm``, ``clipvalue``, ``class_weight``, ``patience``, ``label_smoothing``,
    ``val_size``, ``seed``, ``verbose``, the data ``kind`` and the adapter's settings
    (for text: ``text_col``, ``label_col``, ``tokens``, ``max_tokens``, ``max_length``,
    ``embedding_dim``; for sensor data: ``series_col``, ``time_col``, ``channels``, ``window``,
    ``stride``, ``window_label``, ``downsample``; for stock prices: ``date_col``, ``ticker_col``,
    ``features``, ``window``, ``horizon``, ``threshold``; for tagged tokens: ``tokens_col``,
    ``tag_col``, ``char_encoder``, ``max_tokens``, ``embedding_dim``; for the character
    language model, ``kind="chars"``: ``max_length``, ``embedding_dim``). ``class_weight`` and
    ``label_smoothing`` left at ``"auto"``/``None`` take the data kind's defaults. ``strategy``
    (``"auto"``, ``"default"``, ``"mirrored"``, ``"multi-worker"``) picks the ``tf.distribute``
    engine (see :mod:`seqclf.distribute`).

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

    def __init__(self, arch="bigru", units=(64,), dropout=None, recurrent_dropout=0.0, pooling="auto",
                 task="many-to-one", epochs=None, batch_size=None, learning_rate=1e-3, clipnorm=1.0, clipvalue=None,
                 class_weight="auto", patience=None, label_smoothing=None, val_size=0.1, seed=0, verbose=0,
                 kind="auto", text_col=None, label_col=None, tokens="word", max_tokens=None, max_length=None,
                 embedding_dim=64, series_col=None, time_col=None, channels=None, window=None, stride=None,
                 window_label="majority", downsample=None, date_col=None, ticker_col=None, features=None, horizon=1,
                 threshold=0.0, tokens_col=None, tag_col=None, char_encoder="on", strategy="auto"):
        self.arch = arch
        self.units = units
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.pooling = pooling
        self.task = task
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
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
        self.series_col = series_col
        self.time_col = time_col
        self.channels = channels
        self.window = window
        self.stride = stride
        self.window_label = window_label
        self.downsample = downsample
        self.date_col = date_col
        self.ticker_col = ticker_col
        self.features = features
        self.horizon = horizon
        self.threshold = threshold
        self.tokens_col = tokens_col
        self.tag_col = tag_col
        self.char_encoder = char_encoder
        self.strategy = strategy

    def settings(self):
        """The model and training settings as a checked :class:`~seqclf.training.FitSettings`."""
        return FitSettings(**{name: getattr(self, name) for name in FitSettings.__dataclass_fields__
                              if hasattr(self, name)})

    def make_adapter(self, frame, source="X"):
        """The adapter of ``self.kind`` (detected from ``frame`` for ``"auto"``), with this estimator's settings."""
        cls = detect_adapter(frame, source) if self.kind == "auto" else get_adapter(self.kind)
        options = {name: getattr(self, name) for name in ADAPTER_PARAMS if name in cls.option_names()}
        return cls(label_col=self.label_col, task=self.task, **options)

    def fit(self, X, y=None, validation_data=None, source="X"):
        """Learn the preprocessing and the model from ``X`` and ``y``; return ``self``.

        Parameters
        ----------
        X : list, array or Series of str; array ``(n_samples, n_timesteps, n_features)``; list of 2-D arrays; or DataFrame
            Texts; sequences of numbers (arrays of unequal lengths are padded and masked, NaN is
            a missing value); or a table whose columns the adapter finds (``text_col``,
            ``label_col``; for sensor data a long table with ``series_col``; for stock data a price
            table with a date column, whose labels come from the prices).
        y : array-like, optional
            Labels, one per sequence, or one array of labels per sequence (one per step) for
            ``task="many-to-many"``; optional when ``X`` is a table holding them.
        validation_data : (X_val, y_val) or DataFrame, optional
            Data for early stopping; by default a ``val_size`` share of ``X`` (stratified; for
            stock prices the latest windows, purged).
        source : str
            How error messages name ``X`` (the CLI passes the file name).
        """
        settings = self.settings()
        if y is None and not isinstance(X, pd.DataFrame):
            raise ConfigError(f"{type(self).__name__} requires y to be passed, but the target y is None "
                              f"(only a table X may hold its own labels)")
        if y is not None and settings.task == "many-to-one":
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        frame = _as_frame(X, y, self.text_col or "text", self.label_col or "label")
        adapter = self.make_adapter(frame, source)
        frame = adapter.prepare(frame, source)
        if len(frame) < 2:
            raise DataError(f"{source} has {len(frame)} sample(s); a classifier needs at least two per class")
        if validation_data is None:
            frame, val_frame = adapter.split(frame, settings.val_size, settings.seed, source, "val")
        else:
            val_X, val_y = validation_data if isinstance(validation_data, tuple) else (validation_data, None)
            val_frame = adapter.prepare(_as_frame(val_X, val_y, _text_col(adapter), adapter.label_col),
                                        "validation_data")
        return self.fit_examples(adapter, frame, val_frame, source)

    def fit_examples(self, adapter, frame, val_frame, source="X", backup_dir=None):
        """Fit on training and validation examples that ``adapter`` has prepared (``seqclf fit`` splits first).

        ``frame`` may be a :class:`~seqclf.data.shards.RowStream` (text shards read a chunk at a time).
        ``backup_dir``: back up each finished epoch there and resume from it (see :func:`seqclf.training.train`).
        """
        settings = self.settings()
        strategy = distribute.make_strategy(settings.strategy)
        seed_everything(settings.seed)
        adapter.fit(frame, source)
        distribute.check_same_everywhere(strategy, _learned_state(adapter), "vocabularies, scalers or classes")
        defaults = adapter.model_defaults()
        self.pooling_ = defaults["pooling"] if settings.pooling == "auto" else settings.pooling
        if get_architecture(settings.arch).attention:
            self.pooling_ = "attention"
        self.dropout_ = defaults["dropout"] if settings.dropout is None else settings.dropout
        self.class_weight_ = (defaults.get("class_weight", AUTO_TRAINING["class_weight"])
                              if settings.class_weight == "auto" else settings.class_weight)
        self.label_smoothing_ = (defaults.get("label_smoothing", AUTO_TRAINING["label_smoothing"])
                                 if settings.label_smoothing is None else settings.label_smoothing)
        if adapter.kind == "chars" and get_architecture(settings.arch).bidirectional:
            raise ConfigError(f"{settings.arch!r} reads the text backwards too, so it would see the character it must "
                              f"predict; a language model needs one direction: lstm, gru, rnn, ...")
        with distribute.scope(strategy):
            core = build_classifier(
                settings.arch, n_classes=len(adapter.classes_), units=settings.units, dropout=self.dropout_,
                recurrent_dropout=settings.recurrent_dropout, task=settings.task,
                pooling=self.pooling_,
                name=re.sub(r"[^A-Za-z0-9_.-]+", "_", settings.arch),  # a valid TensorFlow scope name
                **adapter.model_inputs(),
            )
        streamed = isinstance(frame, RowStream)
        if streamed:  # too many rows for memory: read a pool at a time during training
            counts = [adapter.class_counts_.get(name, 0) for name in adapter.classes_]
            x_train, y_train = Streamed(frame, adapter.encode, lambda pool: adapter.targets(pool, source), counts), None
        else:
            x_train, y_train = adapter.encode(frame), adapter.targets(frame, source)
        self.training_ = train(
            core, x_train, y_train,
            adapter.encode(val_frame), adapter.targets(val_frame, "validation_data"),
            epochs=settings.epochs, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
            clipnorm=settings.clipnorm, clipvalue=settings.clipvalue, class_weight=self.class_weight_,
            patience=settings.patience, label_smoothing=self.label_smoothing_, verbose=self.verbose, backup_dir=backup_dir,
            strategy=strategy,
        )
        if strategy is not None:
            core = distribute.local_copy(core)
        self.classes_ = (np.array(adapter.classes_, dtype=object) if streamed
                         else np.unique(adapter.raw_labels(frame).to_numpy()))
        if self.classes_.dtype.kind in "US":
            self.classes_ = self.classes_.astype(object)
        self.adapter_ = adapter
        self.model_ = adapter.wrap(core)
        self.history_ = self.training_.history
        self.n_parameters_ = int(core.count_params())
        self.rows_ = {"train": len(frame), "val": len(val_frame)}
        self.class_counts_ = adapter.class_counts_ if streamed else adapter.label_counts(frame)
        return self

    def predict_proba(self, X):
        """Class probabilities, ``(n_samples, n_classes)``, columns in the order of ``classes_``.

        Many-to-many: ``(n_samples, n_timesteps, n_classes)``, padded to the longest sequence.
        """
        check_is_fitted(self, "model_")
        frame = self.adapter_.prepare(_as_frame(X, None, _text_col(self.adapter_), None), "X", labeled=False)
        return predict_proba(self.model_, self.adapter_, frame)

    def predict(self, X):
        """The most probable class of each sequence (or of each step, ``(n_samples, n_timesteps)``), as given in ``y``."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=-1)]

    def attention_weights(self, X):
        """The attention pooling's weight of each step: one array per sequence, its real (unmasked) steps only.

        Needs a model with attention pooling (``pooling="attention"`` or an ``...+attn`` spec).
        For text the steps are the tokens the model read; for long series averaged down, the
        averaged steps.
        """
        from .explain import inside

        check_is_fitted(self, "model_")
        frame = self.adapter_.prepare(_as_frame(X, None, _text_col(self.adapter_), None), "X", labeled=False)
        attention, _, mask, _ = inside(self.model_, self.adapter_.raw_inputs(frame))
        if attention is None:
            raise ConfigError(f"this model pools with {self.pooling_!r}, not attention; fit it with pooling='attention'")
        return [weights[real] for weights, real in zip(attention, mask)]

    def generate(self, prime, length=500, temperature=1.0, seed=None):
        """Sample ``length`` characters that continue ``prime``, from a character language model (``kind="chars"``).

        See :func:`seqclf.generate.sample`; the same ``seed`` gives the same text.
        """
        from .generate import sample

        check_is_fitted(self, "model_")
        if self.adapter_.kind != "chars":
            raise ConfigError(f"generate needs a character language model (kind='chars'); this is a "
                              f"{self.adapter_.kind} model")
        return sample(self.model_, list(self.adapter_.classes_), prime, length, temperature, seed, self.adapter_.length)

    def score(self, X, y, sample_weight=None):
        """Accuracy: per sequence, or per real (unpadded) step for many-to-many."""
        if self.task != "many-to-many":
            return super().score(X, y, sample_weight)
        predicted = self.predict(X)
        hits = [np.asarray(p[:len(t)]).astype(str) == np.asarray(t).astype(str) for p, t in zip(predicted, y)]
        return float(np.concatenate(hits).mean())

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
            ("architecture", f"{self.arch} {list(self.units)} pooling={self.pooling_} dropout={self.dropout_}"),
            ("parameters", f"{self.n_parameters_:,}"),
            ("classes", ", ".join(map(str, self.classes_))),
            ("epochs", f"{len(self.history_['loss'])}"),
            ("last epoch", ", ".join(f"{k} {v:.4f}" for k, v in last.items())),
        ))
        return f"<table><caption>SequenceClassifier</caption>{rows}</table>"


class SequenceTagger(SequenceClassifier):
    """A label per step (many-to-many): :class:`SequenceClassifier` with ``task="many-to-many"``.

    ``y`` holds one array of labels per sequence; ``predict`` returns one label per step,
    ``(n_samples, n_timesteps)`` padded to the longest sequence, and ``score`` is the accuracy
    over the real (unpadded) steps. The parameters are those of :class:`SequenceClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> X = [np.sin(np.linspace(0, 6, 30))[:, None] + i for i in range(8)]
    >>> y = [np.where(x[:, 0] > i, "high", "low") for i, x in enumerate(X)]
    >>> tagger = SequenceTagger(units=(4,), epochs=1).fit(X, y)
    >>> tagger.predict(X[:2]).shape
    (2, 30)
    """

    def __init__(self, **params):
        super().__init__(**{"task": "many-to-many", **params})

    # scikit-learn reads the parameters from the signature: those of SequenceClassifier, task defaulting to per step
    __init__.__signature__ = inspect.signature(SequenceClassifier.__init__).replace(parameters=[
        p.replace(default="many-to-many") if p.name == "task" else p
        for p in inspect.signature(SequenceClassifier.__init__).parameters.values()])


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
    cls = SequenceTagger if params.get("task") == "many-to-many" else SequenceClassifier
    estimator = cls(**{k: v for k, v in params.items() if k in cls._get_param_names()})
    estimator.model_ = model
    estimator.adapter_ = adapter
    estimator.classes_ = np.asarray(adapter.classes_, dtype=object)
    estimator.history_ = _read_history(Path(path))
    estimator.n_parameters_ = config["model"]["n_parameters"]
    estimator.pooling_ = config["model"].get("pooling", estimator.pooling)
    estimator.dropout_ = config["model"].get("dropout", estimator.dropout)
    return estimator


def predict_proba(model, adapter, frame):
    """Class probabilities of a fitted ``model`` for the rows of ``frame``, in batches."""
    inputs = adapter.raw_inputs(frame)
    if inputs.dtype == object and inputs.ndim > 1:  # Keras reads 1-D arrays of strings only; tensors of any rank
        inputs = tf.constant(inputs.astype(str))
    return model.predict(inputs, batch_size=PREDICT_BATCH, verbose=0)


def _as_frame(X, y, text_col, label_col):
    """A table from ``X`` and ``y`` (labels, or None): texts go to ``text_col``, number sequences to ``values``."""
    if sparse.issparse(X):
        raise ConfigError("sparse input is not supported: pass a dense array (n_samples, n_timesteps[, n_features])")
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
    elif isinstance(X, (str, bytes)):
        raise ConfigError("X must be a list of texts, not a single string; wrap it: [text]")
    else:
        sequences = _numeric_sequences(X)
        if sequences is not None:
            frame = pd.DataFrame({"id": np.arange(1, len(sequences) + 1), "values": sequences})
        else:
            frame = pd.DataFrame({text_col: list(X)})
    if y is not None:
        if len(y) != len(frame):
            raise ConfigError(f"X has {len(frame)} samples but y has {len(y)} labels; give one label (or one array "
                              f"of labels per step) for each sample")
        frame = frame.assign(**{label_col or "label": [np.asarray(v) if np.ndim(v) else v for v in y]})
    return frame


def _numeric_sequences(X):
    """``X`` as a list of float32 arrays ``(n_timesteps, n_features)`` if it holds numbers; ``None`` for texts.

    Accepted: a 3-D array, a 2-D array (one feature per step), or a list of 2-D or 1-D arrays
    or nested lists of numbers. Complex numbers, infinities and 1-D arrays of numbers are errors.
    """
    if not isinstance(X, (list, tuple, pd.Series, np.ndarray)) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) and X.dtype.kind == "O" and X.ndim >= 2:
        X = X.astype("float64")  # numbers stored as objects; anything else raises numpy's TypeError
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "fiubc":
        raise ConfigError(f"X is a 1-D array of {X.shape[0]} numbers. Reshape your data: (n_samples, n_timesteps) "
                          f"holds one number per step, (n_samples, n_timesteps, n_features) several")
    if isinstance(X, np.ndarray) and X.ndim >= 2:
        arrays = list(X)
    elif isinstance(X, (list, tuple)) and len(X) and not any(isinstance(x, (str, bytes)) for x in X):
        arrays = [np.asarray(x) for x in X]
        if not all(a.ndim in (1, 2) and a.dtype.kind in "fiubc" for a in arrays):
            return None
    else:
        return None
    if any(a.dtype.kind == "c" for a in arrays):
        raise ConfigError("complex numbers are not supported; pass real values (for example their absolute value)")
    arrays = [a.astype("float32") for a in arrays]
    if any(np.isinf(a).any() for a in arrays):
        raise ConfigError("X holds infinite values; NaN marks a missing value, infinity is not allowed")
    return arrays


def _text_col(adapter):
    """The column a list of texts (or of token lists) given as ``X`` goes to: where the adapter reads them."""
    return getattr(adapter, "text_col", None) or getattr(adapter, "tokens_col", None) or "text"


def _model_bytes(model):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _model_from_bytes(data):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.keras"
        path.write_bytes(data)
        return load_model(path)


def _read_history(run_dir):
    path = run_dir / "history.csv"
    return pd.read_csv(path, index_col=0).to_dict(orient="list") if path.exists() else {}


def _learned_state(adapter):
    """What ``adapter.fit`` learned (vocabularies, scalers, classes, lengths), as one string to compare across workers."""
    learned = {k: v for k, v in sorted(vars(adapter).items())
               if k.endswith("_") and isinstance(v, (list, tuple, dict, str, int, float, np.ndarray))}
    return json.dumps(learned, sort_keys=True, default=lambda value: np.asarray(value).tolist())
