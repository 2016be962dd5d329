"""Runs: fit a classifier from data files into a run directory; evaluate and predict with one.

The CLI commands are thin fronts over these functions.
"""

import copy
import hashlib
import json
import logging
import platform
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from . import __version__, distribute
from sklearn.base import clone

from .estimators import SequenceClassifier, predict_proba
from .data.adapters import get_adapter
from .data.columns import label_strings
from .data.readers import read_table
from .data.shards import RowStream, Shards, shard_files
from .errors import ConfigError, DataError, SeqclfError
from .evaluation import (classification_metrics, plot_confusion_matrix, plot_growth, plot_learning_curves,
                         plot_step_labels)
from .export import export_saved_model
from .rundir import (CONFIG, METRICS, MODEL, building, claimed, default_run_dir, load_model, read_config, read_labels,
                     write_json, write_labels)
from .training import FitSettings

log = logging.getLogger(__name__)


@dataclass
class DataSettings:
    """Where the data comes from and how to read it."""

    data: str
    kind: str = "auto"
    val: str = None
    test: str = None
    format: str = None
    encoding: str = "utf-8"
    label_col: str = None
    walk_forward: int = None
    options: dict = field(default_factory=dict)


def fit_run(data, settings=None, out=None, name=None, verbose=1):
    """Train, evaluate and export a classifier; return the path of the finished run directory.

    Parameters
    ----------
    data : DataSettings
        The training file (and optional validation and test files).
    settings : FitSettings, optional
        Model and training settings; defaults to ``FitSettings()``.
    out : str or Path, optional
        The run directory to write; must not exist. Default ``runs/<date-time>-<arch>``.
    name : str, optional
        The model name in ``export/<name>/1``; default the data file's stem.
    verbose : int
        Keras' progress display: 0 silent, 1 progress bar, 2 one line per epoch.

    Examples
    --------
    >>> run = fit_run(DataSettings("datasets/movie_reviews_sample.csv"), FitSettings(epochs=2))  # doctest: +SKIP
    """
    settings = settings or FitSettings()
    cluster = distribute.Cluster.from_environment()
    if cluster.workers > 1 and not out:
        raise ConfigError(f"TF_CONFIG names a cluster of {cluster.workers} workers: pass the same --out to every "
                          f"worker (the chief writes it and its backups; the others write nothing)")
    distribute.make_strategy(settings.strategy)  # early: a cluster's collectives are set up before TensorFlow runs
    out = Path(out) if out else default_run_dir(settings.arch)
    if not cluster.chief:
        return _fit_as_worker(data, settings, out)
    if out.exists():
        raise ConfigError(f"{out} exists already; pass another --out or remove it")
    with claimed(out):
        try:
            return _fit_run(data, settings, out, name, verbose)
        except SeqclfError:  # a backup with finished epochs stays for a restart (a lost worker); an empty one goes
            backup = out.parent / f".{out.name}.backup"
            if not (backup / "training_metadata.json").exists():
                shutil.rmtree(backup, ignore_errors=True)
            raise


def _fit_as_worker(data, settings, out):
    """A worker that is not the chief: train its share and write nothing; return ``None``.

    Only the chief keeps epoch backups; after a restart the others take its weights (see
    :func:`seqclf.distribute.fit`), so a worker may come back on a fresh machine.
    """
    if data.walk_forward:
        raise ConfigError("--walk-forward trains one model per fold; run it on one machine (unset TF_CONFIG)")
    estimator, adapter, frame = _prepared(data, settings, verbose=0)
    train_frame, val_frame, _ = _split(adapter, frame, data, settings)
    estimator.fit_examples(adapter, train_frame, val_frame, source=data.data)
    log.info("training done; the chief writes the run directory %s", out)
    return None


def _fit_run(data, settings, out, name, verbose):
    """``fit_run`` once ``out`` is claimed."""
    estimator, adapter, frame = _prepared(data, settings, verbose)
    if data.walk_forward:
        estimator, test_frame, test_probabilities, metrics = _walk_forward(estimator, adapter, frame, data, settings)
    else:
        train_frame, val_frame, test_frame = _split(adapter, frame, data, settings)
        estimator, test_probabilities, metrics = _fit_and_test(estimator, adapter, train_frame, val_frame, test_frame,
                                                               data, settings, _backup_dir(out, data, settings))
    files = {key: {"path": str(path), "sha256": _sha256(path)} for key, path in
             (("data", data.data), ("val", data.val), ("test", data.test)) if path}
    if isinstance(frame, Shards):  # no one checksum for many files: how many, and how many rows
        files["data"] |= {"shards": len(frame.files), "rows": frame.n_rows, "held_out_shares": frame.shares}
    write_run(estimator, out, name=_export_name(name, data.data), settings=settings,
              test=(test_frame, test_probabilities, metrics), data=files | {"format": data.format, "encoding": data.encoding})
    shutil.rmtree(out.parent / f".{out.name}.backup", ignore_errors=True)  # left by Ctrl-C; training removes its own
    log.info("run written to %s", out)
    return out


def _prepared(data, settings, verbose):
    """The estimator, its adapter (column roles fixed) and the training data: a frame of examples, or
    :class:`~seqclf.data.shards.Shards` for a glob or folder of shards, read a chunk at a time."""
    files = shard_files(data.data, data.format)
    if files:
        shards = Shards(files, data.format, data.encoding, seed=settings.seed)
        first, _, where = next(shards.chunks())
        estimator = SequenceClassifier(**_estimator_params(settings, data, verbose))
        adapter = estimator.make_adapter(first, where)
        if adapter.kind != "text":
            raise ConfigError(f"{data.data} names {len(files)} shards; shards are streamed for text data only, "
                              f"not {adapter.kind} data: combine them into one file")
        _check_options(type(adapter), data.options)
        adapter.prepare(first, where)
        log.info("%s: %d shards, %s rows, read a chunk at a time", data.data, len(files), f"{shards.n_rows:,}")
        return estimator, adapter, shards
    frame = read_table(data.data, data.format, data.encoding)
    estimator = SequenceClassifier(**_estimator_params(settings, data, verbose))
    adapter = estimator.make_adapter(frame, data.data)
    _check_options(type(adapter), data.options)
    frame = adapter.prepare(frame, data.data)
    adapter.check_classes(frame, data.data)
    return estimator, adapter, frame


def _backup_dir(out, data, settings):
    """Where the epochs of the run ``out`` are backed up: kept after a kill, used again by the same command.

    A backup made with other data or settings is removed (with a warning) rather than resumed.
    """
    backup = out.parent / f".{out.name}.backup"
    command = json.dumps({"data": asdict(data), "settings": asdict(settings)}, sort_keys=True, default=str)
    recorded = backup / "command.json"
    if recorded.exists() and recorded.read_text(encoding="utf-8") != command:
        log.warning("%s holds a backup of a run with other data or settings; starting afresh", backup)
        shutil.rmtree(backup, ignore_errors=True)
    backup.mkdir(parents=True, exist_ok=True)
    recorded.write_text(command, encoding="utf-8")
    return backup


def _fit_and_test(estimator, adapter, train_frame, val_frame, test_frame, data, settings, backup_dir=None):
    """Fit on the training examples; return the estimator, its test probabilities and the metrics."""
    log.info("%s data, label column %r; rows: %d train, %d validation, %d test", adapter.kind, adapter.label_col,
             len(train_frame), len(val_frame), len(test_frame))
    estimator.fit_examples(adapter, train_frame, val_frame, source=data.data, backup_dir=backup_dir)
    log.info("model %s %s: %s parameters; classes: %s", settings.arch, list(settings.units),
             f"{estimator.n_parameters_:,}", ", ".join(estimator.adapter_.classes_))
    model, adapter = estimator.model_, estimator.adapter_
    test_probabilities = predict_proba(model, adapter, test_frame)
    metrics = {
        "val": _evaluate(adapter, val_frame, predict_proba(model, adapter, val_frame), data.val or data.data),
        "test": _evaluate(adapter, test_frame, test_probabilities, data.test or data.data),
        **adapter.report(test_frame, test_probabilities),
    }
    log.info("test accuracy %.4f, macro F1 %.4f (n=%d)", metrics["test"]["accuracy"], metrics["test"]["macro_f1"],
             metrics["test"]["n"])
    for baseline, scores in metrics.get("baselines", {}).items():
        log.info("  baseline %-12s accuracy %.4f, macro F1 %.4f", baseline, scores["accuracy"], scores["macro_f1"])
    return estimator, test_probabilities, metrics


def _walk_forward(estimator, adapter, frame, data, settings):
    """Fit and test on each expanding-window fold; return the last fold's estimator, test frame and probabilities,
    and metrics: the last fold's, with ``walk_forward`` holding every fold's and their mean."""
    if not hasattr(adapter, "walk_forward_folds"):
        raise ConfigError(f"--walk-forward applies to data ordered in time (--kind stock), not to {adapter.kind} data")
    if data.test or data.val:
        raise ConfigError("--walk-forward makes its own test and validation splits; leave out --test and --val")
    folds = []
    pairs = adapter.walk_forward_folds(frame, data.walk_forward, data.data)
    for number, (earlier, test_frame) in enumerate(pairs, 1):
        log.info("walk-forward fold %d/%d: test %s to %s", number, len(pairs), test_frame["date"].min(),
                 test_frame["date"].max())
        fold_adapter = copy.deepcopy(adapter)  # prepared (columns found), not fitted
        try:
            train_frame, val_frame = fold_adapter.split(earlier, settings.val_size, settings.seed, data.data, "val")
        except DataError as error:
            raise DataError(f"walk-forward fold {number} of {len(pairs)}: {error}; or use fewer folds") from None
        if len(train_frame) < len(test_frame):
            log.warning("fold %d learns from %d windows and is tested on %d; its result says little (use fewer "
                        "folds or more history)", number, len(train_frame), len(test_frame))
        fold_estimator = clone(estimator)
        fitted, probabilities, metrics = _fit_and_test(fold_estimator, fold_adapter, train_frame, val_frame, test_frame,
                                                       data, settings)
        folds.append({"fold": number, "train_period": [train_frame["date"].min(), train_frame["date"].max()],
                      **metrics})
    mean = _mean(folds)
    _log_fold_mean(mean, len(folds))
    return fitted, test_frame, probabilities, {**metrics, "walk_forward": {"folds": folds, "mean": mean}}


def _mean(folds):
    """The mean of each number the folds' metrics share (accuracy, macro F1, baselines, strategy returns)."""
    def average(values):
        if all(isinstance(v, dict) for v in values):
            keys = [k for k in values[0] if all(k in v for v in values) and k not in ("per_class", "fold", "n")]
            averaged = {k: average([v[k] for v in values]) for k in keys}
            return {k: v for k, v in averaged.items() if v is not None} or None
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return round(float(np.mean(values)), 6)
        return None
    return average([{k: fold[k] for k in ("test", "baselines", "strategy") if k in fold} for fold in folds])


def _log_fold_mean(mean, n_folds):
    line = f"walk-forward mean over {n_folds} folds: model accuracy {mean['test']['accuracy']:.4f}"
    line += "".join(f", {name} {scores['accuracy']:.4f}" for name, scores in mean.get("baselines", {}).items())
    log.info(line)


def write_run(estimator, out, name="model", settings=None, data=None, test=None):
    """Write a fitted estimator as a run directory (atomically).

    ``test``, a ``(frame, probabilities, metrics)`` triple, adds the test reports: metrics.json,
    the confusion matrix and the test predictions.
    """
    adapter, model, result = estimator.adapter_, estimator.model_, getattr(estimator, "training_", None)
    settings = settings or estimator.settings()
    rows = dict(getattr(estimator, "rows_", {}))
    if test is not None:
        test_frame, test_probabilities, metrics = test
        rows["test"] = len(test_frame)
    config = {
        "seqclf_version": __version__,
        "kind": adapter.kind,
        "adapter": adapter.get_config(),
        "settings": asdict(settings),
        "data": data or {},
        "data_summary": {**adapter.summary(), "rows": rows, "class_counts": getattr(estimator, "class_counts_", {})},
        "model": {"n_parameters": estimator.n_parameters_, "export_name": name,
                  "pooling": getattr(estimator, "pooling_", settings.pooling),
                  "dropout": getattr(estimator, "dropout_", settings.dropout),
                  "class_weight": getattr(estimator, "class_weight_", settings.class_weight),
                  "label_smoothing": getattr(estimator, "label_smoothing_", settings.label_smoothing)},
        "versions": _versions(),
    }
    with building(out) as partial:
        model.save(partial / MODEL)
        write_labels(partial, adapter.classes_)
        export_saved_model(model, adapter.classes_, adapter.serving_spec(), partial / "export" / name / "1")
        if estimator.history_:
            pd.DataFrame(estimator.history_).rename_axis("epoch").rename(lambda e: e + 1).to_csv(partial / "history.csv")
            plot_learning_curves(estimator.history_, partial / "learning_curves.png",
                                 result.best_epoch if result else None)
        if test is not None:
            per_step = test_probabilities.ndim == 3
            plot_confusion_matrix(metrics["test"]["confusion_matrix"], adapter.classes_, partial / "confusion_matrix.png",
                                  title="test confusion matrix, per step" if per_step else "test confusion matrix")
            if adapter.step_table or not per_step:
                table = _prediction_table(adapter, test_frame, test_probabilities, with_truth=True)
                table.to_csv(partial / "test_predictions.csv", index=False)
                if per_step:
                    _plot_first_series(table, adapter.classes_, partial / "step_labels.png")
            if hasattr(adapter, "strategy_curves"):
                plot_growth(adapter.strategy_curves(test_frame, test_probabilities), partial / "strategy.png",
                            title="test period: buy and hold against long/flat on 'up' calls (mean over instruments)")
            write_json(partial / METRICS, {
                **metrics, "train_seconds": round(result.seconds, 3), "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch, "stopped_by": result.stopped_by, "budget": result.budget,
                "classes": adapter.classes_,
            })
        write_json(partial / CONFIG, config)
    return Path(out)


def _estimator_params(settings, data, verbose):
    params = {k: v for k, v in asdict(settings).items() if k != "test_size"}
    given = {k: v for k, v in data.options.items() if v is not None}
    return params | given | {"kind": data.kind, "label_col": data.label_col, "verbose": verbose}


def load_run(run_dir):
    """Load what a run wrote: ``(model, adapter, config)``; ``adapter.classes_`` are the class names."""
    config = read_config(run_dir)
    model = load_model(Path(run_dir) / MODEL)
    adapter = get_adapter(config["kind"])(**config["adapter"])
    adapter.classes_ = read_labels(run_dir)
    adapter.restore(config["data_summary"])
    return model, adapter, config


def evaluate_run(run_dir, data, format=None, encoding="utf-8", columns=None, output=None):
    """Metrics of a run's model on a labelled file; written as JSON to ``output`` (default in the run)."""
    model, adapter, _ = load_run(run_dir)
    frame = _read_for(adapter, data, format, encoding, columns, labeled=True)
    probabilities = predict_proba(model, adapter, frame)
    metrics = {**_evaluate(adapter, frame, probabilities, data), **adapter.report(frame, probabilities)}
    if metrics.get("in_sample_windows"):
        log.warning("%d of the %d windows in %s fall in the model's training period: those results are in-sample",
                    metrics["in_sample_windows"], len(frame), data)
    output = Path(output) if output else Path(run_dir) / f"evaluate-{_stem(data)}.json"
    write_json(output, {"data": str(data), "sha256": _sha256(data), **metrics})
    return metrics, output


def predict_run(run_dir, data=None, texts=None, format=None, encoding="utf-8", columns=None):
    """Predictions of a run's model: a table of id, predicted label and one probability per class."""
    model, adapter, _ = load_run(run_dir)
    if texts is not None and adapter.kind != "text":
        raise ConfigError(f"--text applies to text models; {run_dir} holds a {adapter.kind} model: pass a data file")
    if texts is not None:
        frame = pd.DataFrame({"text": list(texts)})
        format = "lines"
    else:
        frame = None
    frame = _read_for(adapter, data, format, encoding, columns, labeled=False, frame=frame)
    return _prediction_table(adapter, frame, predict_proba(model, adapter, frame))


def run_info(run_dir):
    """What a run is: settings, data summary, parameter count and metrics (reads only JSON)."""
    config = read_config(run_dir)
    metrics_path = Path(run_dir) / METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    return config, metrics


def _check_options(adapter_cls, options):
    foreign = sorted(k for k, v in options.items() if v is not None and k not in adapter_cls.option_names())
    if foreign:
        flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
        raise ConfigError(f"{flags} do(es) not apply to --kind {adapter_cls.kind}")


def _split(adapter, frame, data, settings):
    """Train, validation and test examples: from their own files, or split off by series (stratified); from
    shards, the training rows as a stream and held-out rows chosen by a hash of the row number."""
    if isinstance(frame, Shards):
        frame.hold_out(0.0 if data.val else settings.val_size, 0.0 if data.test else settings.test_size)
        held_out = [adapter.prepare(read_table(path, data.format, data.encoding), path) if path
                    else frame.frame(part, adapter.prepare) for part, path in (("val", data.val), ("test", data.test))]
        return RowStream(frame, adapter), *held_out
    if data.test:
        test = adapter.prepare(read_table(data.test, data.format, data.encoding), data.test)
    else:
        frame, test = adapter.split(frame, settings.test_size, settings.seed, data.data, "test")
    if data.val:
        val = adapter.prepare(read_table(data.val, data.format, data.encoding), data.val)
    else:
        frame, val = adapter.split(frame, settings.val_size / (1 - (0 if data.test else settings.test_size)),
                                   settings.seed, data.data, "val")
    return frame, val, test


def _read_for(adapter, data, format, encoding, columns, labeled, frame=None):
    """Read a table for a loaded run; stored column names give way to auto-detection when absent."""
    if frame is None:
        frame = read_table(data, format, encoding)
    columns = {k: v for k, v in (columns or {}).items() if v is not None}
    for name, value in vars(adapter).items():
        if name.endswith("_col") and value not in frame.columns and name not in columns:
            setattr(adapter, name, None)
    for name, value in columns.items():
        setattr(adapter, name, value)
    return adapter.prepare(frame, str(data) if data is not None else "--text", labeled=labeled)


def _evaluate(adapter, frame, probabilities, source):
    """Metrics per sequence, or per step (padded steps left out) when the model labels each step."""
    y_true, y_pred = adapter.targets(frame, source), probabilities.argmax(axis=-1)
    if y_true.ndim == 2:
        real = y_true >= 0
        y_true, y_pred = y_true[real], y_pred[real]
    return {**classification_metrics(y_true, y_pred, adapter.classes_), **adapter.extra_metrics(frame, probabilities)}


def _prediction_table(adapter, frame, probabilities, with_truth=False):
    """id (and window start), true label, predicted label, one probability per class; a row per step for per-step models."""
    table = adapter.index(frame)
    if probabilities.ndim == 3:
        lengths = adapter.lengths(frame)
        rows = np.repeat(np.arange(len(frame)), lengths)
        steps = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, "int64")
        table = table.iloc[rows].reset_index(drop=True)
        table["step"] = table.get("start", 0) + steps
        for name, values in adapter.step_columns(frame).items():
            table[name] = values
        probabilities = probabilities[rows, steps]
    if with_truth:
        table["true_label"] = label_strings(adapter.raw_labels(frame)).to_numpy()
    table["label"] = np.asarray(adapter.classes_, dtype=object)[probabilities.argmax(axis=1)]
    for i, name in enumerate(adapter.classes_):
        table[f"prob_{name}"] = probabilities[:, i].round(6)
    return table


def _plot_first_series(table, classes, path):
    """True against predicted labels over the steps of the first test series (overlapping windows averaged)."""
    series = table[table["id"] == table["id"].iloc[0]]
    columns = [f"prob_{name}" for name in classes]
    by_step = series.groupby("step").agg({"true_label": "first", **{c: "mean" for c in columns}})
    predicted = np.asarray(classes, dtype=object)[by_step[columns].to_numpy().argmax(axis=1)]
    plot_step_labels(by_step.index.to_numpy(), by_step["true_label"].to_numpy(), predicted, classes, path,
                     title=f"test series {table['id'].iloc[0]}: true and predicted label per step")


def _export_name(name, data):
    name = name or _stem(data)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


def _stem(path):
    return "stdin" if str(path) == "-" else Path(path).stem


def _sha256(path):
    if str(path) == "-" or not Path(path).is_file():  # standard input, shards
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions():
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
