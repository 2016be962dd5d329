"""scikit-learn compatible estimators: the Python face of ``seqclf fit``.

``SequenceClassifier`` uses the same adapters, tasks, builders and training code as the CLI,
which itself trains through it. Its parameters are those of :mod:`seqclf.params` (the CLI's
options in snake_case, with the same defaults); the constructor only stores them, and
everything learned ends in ``_``.
"""

import importlib
import json
import logging
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import distribute, params, tasks
from .data.adapters import detect_adapter, get_adapter
from .data.shards import RowStream
from .errors import ConfigError, DataError
from .inputs import as_frame
from .models.archs import get_architecture
from .models.builders import check_builder_settings
from .models.crf import decoding
from .models.kernels import adapt_kernel_features
from .params import PARAMS
from .prediction import predict_proba
from .rundir import load_model, load_run, read_history, write_run
from .tasks.per_step import PerStep
from .training import AUTO_TRAINING, FitSettings, Streamed, seed_everything, train

log = logging.getLogger(__name__)


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """A recurrent classifier: one label per sequence, or per step, as its ``task`` says.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, as given in ``y`` (sorted as ``np.unique`` sorts them).
    history_ : dict
        Loss and accuracy per epoch, for training and validation.
    tensorboard_dir_ : Path or None
        Where the TensorBoard logs went (``tensorboard=True``).
    model_ : keras.Model
        The fitted model: raw input in, class probabilities out.
    task_ : Task
        The task it was fitted for (:mod:`seqclf.tasks`).

    Examples
    --------
    >>> clf = SequenceClassifier(units=(8,), epochs=1)
    >>> clf.fit(["a fine film", "dull stuff"] * 20, ["pos", "neg"] * 20).classes_
    array(['neg', 'pos'], dtype=object)
    >>> clf.predict(["a fine film"]).shape
    (1,)

    Parameters
    ----------
    """

    __doc__ += params.docs(params.ESTIMATOR)

    def __init__(self, *args, **values):
        if len(args) > len(params.ESTIMATOR) or set(values) & set(params.ESTIMATOR[:len(args)]):
            raise TypeError(f"{type(self).__name__} got too many or repeated arguments")
        values = {**dict(zip(params.ESTIMATOR, args)), **values}
        unknown = sorted(set(values) - set(params.ESTIMATOR))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameter(s) {', '.join(unknown)}; its "
                            f"parameters are those of seqclf.params.PARAMS")
        for name in params.ESTIMATOR:
            setattr(self, name, values.get(name, PARAMS[name].default))

    __init__.__signature__ = params.signature(params.ESTIMATOR)

    def settings(self):
        """The model and training settings as a checked :class:`~seqclf.training.FitSettings`."""
        return FitSettings(**{name: getattr(self, name) for name in params.SETTINGS if name in params.ESTIMATOR})

    def make_adapter(self, frame, source="X"):
        """The adapter of ``self.kind`` (the task's kind, or detected from ``frame``, for ``"auto"``), with this
        estimator's settings; a setting that does not apply to that kind is an error."""
        task = tasks.get_task(self.task)
        kind = tasks.kind_of(task) if self.kind == "auto" else self.kind
        cls = detect_adapter(frame, source) if kind is None else get_adapter(kind)
        params.refuse_foreign({name: getattr(self, name) for name in params.ESTIMATOR
                               if PARAMS[name].group in ("data", "kind")
                               and not params.is_default(name, getattr(self, name))}, cls.kind)
        options = {name: getattr(self, name) for name in cls.option_names()}
        return cls(label_col=self.label_col, task=task, **options)

    def fit(self, X, y=None, validation_data=None, source="X"):
        """Learn the preprocessing and the model from ``X`` and ``y``; return ``self``.

        Parameters
        ----------
        X : list, array or Series of str; array ``(n_samples, n_timesteps, n_features)``; list of 2-D arrays; or DataFrame
            Texts; sequences of numbers (arrays of unequal lengths are padded and masked, NaN is
            a missing value); token lists; or a table whose columns the adapter finds.
        y : array-like, optional
            Labels, one per sequence, or one array of labels per sequence (one per step) for a
            per-step task; optional when ``X`` is a table holding them.
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
        if y is not None and not tasks.get_task(settings.task).per_step:
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        frame = as_frame(X, y, self.text_col or "text", self.label_col or "label")
        adapter = self.make_adapter(frame, source)
        frame = adapter.prepare(frame, source)
        if len(frame) < 2:
            raise DataError(f"{source} has {len(frame)} sample(s); a classifier needs at least two per class")
        if validation_data is None:
            frame, val_frame = adapter.split(frame, settings.val_size, settings.seed, source, "val")
        else:
            val_X, val_y = validation_data if isinstance(validation_data, tuple) else (validation_data, None)
            val_frame = adapter.prepare(as_frame(val_X, val_y, adapter.input_column(), adapter.label_col),
                                        "validation_data")
            adapter.task.check_held_out(adapter, adapter.check_classes(frame, source), {"validation_data": val_frame})
        return self.fit_examples(adapter, frame, val_frame, source)

    def fit_examples(self, adapter, frame, val_frame, source="X", backup_dir=None, log_dir=None):
        """Fit on training and validation examples that ``adapter`` has prepared (``seqclf fit`` splits first).

        ``frame`` may be a :class:`~seqclf.data.shards.RowStream` (text shards read a chunk at a time).
        ``backup_dir``: back up each finished epoch there and resume from it (see :func:`seqclf.training.train`).
        ``log_dir``: where the TensorBoard logs go with ``tensorboard`` on (default: a new temporary folder; on the
        chief only, in a cluster), kept as ``tensorboard_dir_``.
        """
        settings, task = self.settings(), adapter.task
        self.arch_ = settings.arch or task.arch_for(adapter.kind)
        units = check_builder_settings(self.arch_, settings.units, settings.dropout, settings.recurrent_dropout,
                                       settings.pooling, task)
        strategy = distribute.make_strategy(settings.strategy)
        seed_everything(settings.seed)
        adapter.fit(frame, source)
        distribute.check_same_everywhere(strategy, _learned_state(adapter), "vocabularies, scalers or classes")
        self._resolve_auto(settings, {**AUTO_TRAINING, **adapter.model_defaults(), **task.defaults})
        with distribute.scope(strategy):
            core = task.build(self.arch_, adapter, units=units, dropout=self.dropout_,
                              recurrent_dropout=settings.recurrent_dropout, pooling=self.pooling_,
                              name=re.sub(r"[^A-Za-z0-9_.-]+", "_", self.arch_))  # a valid TensorFlow scope name
        streamed = isinstance(frame, RowStream)
        if streamed:  # too many rows for memory: read a pool at a time during training
            counts = [adapter.class_counts_.get(name, 0) for name in adapter.classes_]
            x_train = Streamed(frame, adapter.encode, lambda pool: task.targets(adapter, pool, source), counts)
            y_train = None
        else:
            x_train, y_train = adapter.encode(frame), task.targets(adapter, frame, source)
            adapt_kernel_features(core, x_train)
        self.tensorboard_dir_ = None
        if settings.tensorboard and distribute.Cluster.from_environment().chief:
            self.tensorboard_dir_ = Path(log_dir or tempfile.mkdtemp(prefix="seqclf-tensorboard-"))
            log.info("TensorBoard logs go to %s (see them with: tensorboard --logdir %s)", self.tensorboard_dir_,
                     self.tensorboard_dir_)
        self.training_ = train(
            core, x_train, y_train, adapter.encode(val_frame), task.targets(adapter, val_frame, "validation_data"),
            epochs=settings.epochs, batch_size=settings.batch_size, learning_rate=self.learning_rate_,
            lr_schedule=self.lr_schedule_, clipnorm=settings.clipnorm, clipvalue=settings.clipvalue,
            class_weight=self.class_weight_, patience=settings.patience, label_smoothing=self.label_smoothing_,
            verbose=self.verbose or 0, backup_dir=backup_dir, strategy=strategy, per_step=task.per_step,
            own_lengths=task.own_lengths, log_dir=self.tensorboard_dir_,
        )
        if strategy is not None:
            core = distribute.local_copy(core)
        self.classes_ = (np.array(adapter.classes_, dtype=object) if streamed
                         else np.unique(adapter.raw_labels(frame).to_numpy()))
        if self.classes_.dtype.kind in "US":
            self.classes_ = self.classes_.astype(object)
        self.task_, self.adapter_, self.model_ = task, adapter, adapter.wrap(decoding(core))
        self.history_ = self.training_.history
        self.n_parameters_ = int(core.count_params())
        self.rows_ = {"train": len(frame), "val": len(val_frame)}
        self.class_counts_ = adapter.class_counts_ if streamed else adapter.label_counts(frame)
        return self

    def _resolve_auto(self, settings, defaults):
        """What the ``auto`` settings (pooling, dropout, class weights, label smoothing, learning rate and its
        schedule) mean for this kind and task."""
        self.pooling_ = defaults["pooling"] if settings.pooling == "auto" else settings.pooling
        if get_architecture(self.arch_).attention:
            self.pooling_ = "attention"
        self.dropout_ = defaults["dropout"] if settings.dropout is None else settings.dropout
        self.class_weight_ = defaults["class_weight"] if settings.class_weight == "auto" else settings.class_weight
        self.label_smoothing_ = (defaults["label_smoothing"] if settings.label_smoothing is None
                                 else settings.label_smoothing)
        self.learning_rate_ = defaults["learning_rate"] if settings.learning_rate is None else settings.learning_rate
        self.lr_schedule_ = defaults["lr_schedule"] if settings.lr_schedule == "auto" else settings.lr_schedule

    def _examples(self, X):
        check_is_fitted(self, "model_")
        return self.adapter_.prepare(as_frame(X, None, self.adapter_.input_column(), None), "X", labeled=False)

    def predict_proba(self, X):
        """Class probabilities, ``(n_samples, n_classes)``, columns in the order of ``classes_``.

        Per-step tasks: ``(n_samples, n_timesteps, n_classes)``, padded to the longest sequence.
        """
        frame = self._examples(X)
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

        frame = self._examples(X)
        attention, _, mask, _ = inside(self.model_, self.adapter_.raw_inputs(frame))
        if attention is None:
            raise ConfigError(f"this model pools with {self.pooling_!r}, not attention; fit it with pooling='attention'")
        return [weights[real] for weights, real in zip(attention, mask)]

    def generate(self, prime, length=500, temperature=1.0, seed=None):
        """Sample ``length`` characters that continue ``prime``, from a character language model (task ``next-char``).

        See :func:`seqclf.generate.sample`; the same ``seed`` gives the same text.
        """
        check_is_fitted(self, "model_")
        return self.task_.generate(self, prime, length, temperature, seed)

    def score(self, X, y=None, sample_weight=None):
        """Accuracy: per sequence, or per real (unpadded) step for a per-step task.

        ``y=None``: ``X`` is a table holding its own labels (as for :meth:`fit`), scored as ``seqclf evaluate``
        scores a file.
        """
        if y is None and isinstance(X, pd.DataFrame):
            check_is_fitted(self, "model_")
            frame = self.adapter_.prepare(as_frame(X, None, self.adapter_.input_column(), None), "X")
            probabilities = predict_proba(self.model_, self.adapter_, frame)
            return self.task_.evaluate(self.adapter_, frame, probabilities, "X")["accuracy"]
        if not (hasattr(self, "task_") and self.task_.per_step):
            return super().score(X, y, sample_weight)
        return self.task_.score(self.predict(X), y, X)

    def save(self, path):
        """Write a run directory (model, labels, SavedModel export, config) that ``seqclf.load`` and the CLI read."""
        check_is_fitted(self, "model_")
        return write_run(self, path)

    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = _model_bytes(state["model_"])
            adapter = state["adapter_"]
            state["adapter_"] = {"kind": adapter.kind, "config": adapter.get_config(), "classes": adapter.classes_,
                                 "summary": adapter.summary()}
            state.pop("training_", None)
        return state

    def __setstate__(self, state):
        if "model_" in state:
            state["model_"] = _model_from_bytes(state["model_"])
            saved = state["adapter_"]
            state["adapter_"] = get_adapter(saved["kind"])(**saved["config"])
            state["adapter_"].classes_ = saved["classes"]
            state["adapter_"].restore(saved.get("summary", {}))  # what fit learned beyond the model (length caps)
            state.setdefault("task_", state["adapter_"].task)  # pickled before tasks were objects
            state.setdefault("arch_", state.get("arch") or state["task_"].default_arch)
        self.__dict__.update(state)

    def _repr_html_(self):
        if not hasattr(self, "model_"):
            return f"<pre>{self!r} (not fitted)</pre>"
        last = {k: v[-1] for k, v in self.history_.items()}
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in (
            ("architecture", f"{self.arch_} {list(self.units)} pooling={self.pooling_} dropout={self.dropout_}"),
            ("task", self.task_.name),
            ("parameters", f"{self.n_parameters_:,}"),
            ("classes", ", ".join(map(str, self.classes_))),
            ("epochs", f"{len(self.history_['loss'])}"),
            ("last epoch", ", ".join(f"{k} {v:.4f}" for k, v in last.items())),
        ))
        return f"<table><caption>{type(self).__name__}</caption>{rows}</table>"


class SequenceTagger(SequenceClassifier):
    """A label per step: :class:`SequenceClassifier` whose ``task`` defaults to a label per step (``many-to-many``).

    ``y`` holds one array of labels per sequence; ``predict`` returns one label per step,
    ``(n_samples, n_timesteps)`` padded to the longest sequence, and ``score`` is the accuracy
    over the real (unpadded) steps. With ``kind="tokens"`` it is the token tagger (task ``tag``),
    with ``kind="chars"`` the character language model (``next-char``).

    Examples
    --------
    >>> import numpy as np
    >>> X = [np.sin(np.linspace(0, 6, 30))[:, None] + i for i in range(8)]
    >>> y = [np.where(x[:, 0] > i, "high", "low") for i, x in enumerate(X)]
    >>> tagger = SequenceTagger(units=(4,), epochs=1).fit(X, y)
    >>> tagger.predict(X[:2]).shape
    (2, 30)
    """

    def __init__(self, *args, **values):
        super().__init__(*args, **{"task": PerStep.name, **values})

    __init__.__signature__ = params.signature(params.ESTIMATOR, {"task": PerStep.name})


def load(path):
    """Read a run directory written by ``SequenceClassifier.save`` or ``seqclf fit``.

    Examples
    --------
    >>> clf = load("runs/mr")  # doctest: +SKIP
    >>> clf.predict(["a gripping, funny film"])  # doctest: +SKIP
    array(['pos'], dtype=object)
    """
    model, adapter, config = load_run(path)
    module, _, name = adapter.task.estimator.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    kind_options = {k: v for k, v in config["adapter"].items() if k in adapter.option_names()}
    if PARAMS["label_col"].applies_to(adapter.kind):
        kind_options["label_col"] = config["adapter"].get("label_col")
    values = {**config["settings"], "kind": config["kind"], **kind_options, "task": adapter.task.name}
    values["units"] = tuple(values["units"])
    estimator = cls(**{k: v for k, v in values.items() if k in params.ESTIMATOR})
    model_config = config["model"]
    estimator.model_, estimator.adapter_, estimator.task_ = model, adapter, adapter.task
    estimator.classes_ = np.asarray(adapter.classes_, dtype=object)
    estimator.history_ = read_history(path)
    estimator.n_parameters_ = model_config["n_parameters"]
    estimator.arch_ = estimator.arch
    estimator.pooling_ = model_config.get("pooling", estimator.pooling)
    estimator.dropout_ = model_config.get("dropout", estimator.dropout)
    return estimator


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


def _learned_state(adapter):
    """What ``adapter.fit`` learned (vocabularies, scalers, classes, lengths), as one string to compare across workers."""
    learned = {k: v for k, v in sorted(vars(adapter).items())
               if k.endswith("_") and isinstance(v, (list, tuple, dict, str, int, float, np.ndarray))}
    return json.dumps(learned, sort_keys=True, default=lambda value: np.asarray(value).tolist())
