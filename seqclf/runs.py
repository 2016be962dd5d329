"""Runs: fit a classifier from data files into a run directory; evaluate and predict with one.

The CLI commands are thin fronts over these functions; what differs between tasks and kinds of
data is asked of the task (:mod:`seqclf.tasks`) and the adapter (:mod:`seqclf.data`).
"""

import copy
import hashlib
import json
import logging
import re
import shutil
from dataclasses import asdict, field, make_dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from . import distribute, params, tasks
from .data.adapters import get_adapter
from .data.readers import read_table
from .data.shards import RowStream, Shards, shard_files
from .errors import ConfigError, DataError, SeqclfError
from .params import DATA_SETTINGS, PARAMS
from .estimators import SequenceClassifier
from .rundir import METRICS, claimed, default_run_dir, load_run, read_config, write_json, write_run
from .training import FitSettings
from .training.backup import finished_epoch

__all__ = ["DataSettings", "FitSettings", "evaluate_run", "fit_run", "load_run", "predict_run", "report_lines", "run_info",
           "settings_from", "write_run"]
log = logging.getLogger(__name__)


DataSettings = make_dataclass(
    "DataSettings", [("data", str)] + [(name, object, field(default=PARAMS[name].default)) for name in DATA_SETTINGS]
    + [("options", dict, field(default_factory=dict))],
    namespace={"__module__": __name__, "__doc__": "Where the data comes from and how to read it: the ``run`` and "
               "``data`` parameters of :data:`seqclf.params.PARAMS`; ``options`` holds the kind's settings "
               "(``window``, ...)."})


def settings_from(data, values):
    """``(DataSettings, FitSettings)`` for the data file ``data`` from ``values`` (parameter name -> value, as the
    commands' options or a caller's keywords give them): the model and training settings, the data settings, and
    the rest as the kind's options. ``values`` keeps nothing it does not name.

    Examples
    --------
    >>> data, settings = settings_from("reviews.csv", {"arch": "bilstm", "test": "test.csv", "embedding_dim": 32})
    >>> settings.arch, data.test, data.options
    ('bilstm', 'test.csv', {'embedding_dim': 32})
    """
    values = dict(values)
    settings = FitSettings(**{k: values.pop(k) for k in params.SETTINGS if k in values})
    return DataSettings(str(data), **{k: values.pop(k) for k in DATA_SETTINGS if k in values}, options=values), settings


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
    out = Path(out) if out else default_run_dir(settings.arch or tasks.get_task(settings.task).arch_for(data.kind))
    if not cluster.chief:
        return _fit_as_worker(data, settings, out)
    if out.exists():
        raise ConfigError(f"{out} exists already; pass another --out or remove it")
    with claimed(out):
        try:
            return _fit_run(data, settings, out, name, verbose)
        except SeqclfError:  # a backup with finished epochs stays for a restart (a lost worker); an empty one goes
            backup = out.parent / f".{out.name}.backup"
            if not finished_epoch(backup):
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
        # TensorBoard's logs beside the run until it is written (a restarted run goes on logging there)
        estimator, test_probabilities, metrics = _fit_and_test(estimator, adapter, train_frame, val_frame, test_frame,
                                                               data, _backup_dir(out, data, settings),
                                                               out.parent / f".{out.name}.logs")
    files = {key: {"path": str(path), "sha256": _sha256(path)} for key, path in
             (("data", data.data), ("val", data.val), ("test", data.test)) if path}
    if isinstance(frame, Shards):  # no one checksum for many files: how many, and how many rows
        files["data"] |= {"shards": len(frame.files), "rows": frame.n_rows, "held_out_shares": frame.shares}
    write_run(estimator, out, name=_export_name(name, data.data), settings=settings,
              test=(test_frame, test_probabilities, metrics), data=files | {"format": data.format, "encoding": data.encoding})
    shutil.rmtree(out.parent / f".{out.name}.backup", ignore_errors=True)  # left by Ctrl-C; training removes its own
    shutil.rmtree(out.parent / f".{out.name}.logs", ignore_errors=True)  # copied into the run as logs/
    log.info("run written to %s", out)
    return out


def _estimator(data, settings, verbose):
    """The estimator of a run: its settings, the data's kind and label column, and the kind's options."""
    values = {k: v for k, v in asdict(settings).items() if k != "test_size"}
    given = {k: v for k, v in data.options.items() if v is not None}
    return SequenceClassifier(**(values | given | {"kind": data.kind, "label_col": data.label_col, "verbose": verbose}))


def _prepared(data, settings, verbose):
    """The estimator, its adapter (column roles fixed) and the training data: a frame of examples, or
    :class:`~seqclf.data.shards.Shards` for a glob or folder of shards, read a chunk at a time."""
    estimator = _estimator(data, settings, verbose)
    task = tasks.resolve(settings.task, data.kind if data.kind == "auto" else get_adapter(data.kind).kind)
    files = shard_files(data.data, data.format)
    if files:
        shards = Shards(files, data.format, data.encoding, seed=settings.seed)
        first, _, where = next(shards.chunks())
        adapter = estimator.make_adapter(first, where)
        params.refuse_foreign({k: v for k, v in data.options.items() if v is not None}, adapter.kind)
        if adapter.kind != "text":
            raise ConfigError(f"{data.data} names {len(files)} shards; shards are streamed for text data only, "
                              f"not {adapter.kind} data: combine them into one file")
        adapter.prepare(first, where)
        log.info("%s: %d shards, %s rows, read a chunk at a time", data.data, len(files), f"{shards.n_rows:,}")
        return estimator, adapter, shards
    frame = read_table(data.data, task.read_format(data.data, data.format), data.encoding)
    adapter = estimator.make_adapter(frame, data.data)
    params.refuse_foreign({k: v for k, v in data.options.items() if v is not None}, adapter.kind)
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


def _fit_and_test(estimator, adapter, train_frame, val_frame, test_frame, data, backup_dir=None, log_dir=None):
    """Fit on the training examples; return the estimator, its test probabilities and the metrics.

    The task checks the held-out labels before training starts, so a refusal never costs a training.
    """
    log.info("%s data, task %s%s; rows: %d train, %d validation, %d test", adapter.kind, adapter.task.name,
             f", label column {adapter.label_col!r}" if adapter.label_col else "", len(train_frame), len(val_frame),
             len(test_frame))
    if not isinstance(train_frame, RowStream):
        adapter.task.check_held_out(adapter, adapter.check_classes(train_frame, data.data),
                                    {data.val or f"{data.data} (validation)": val_frame,
                                     data.test or f"{data.data} (test)": test_frame})
    estimator.fit_examples(adapter, train_frame, val_frame, source=data.data, backup_dir=backup_dir, log_dir=log_dir)
    log.info("model %s %s: %s parameters; classes: %s", estimator.arch_, list(estimator.settings().units),
             f"{estimator.n_parameters_:,}", ", ".join(estimator.adapter_.classes_))
    model, adapter = estimator.model_, estimator.adapter_
    task = adapter.task
    test_probabilities = task.predictions(model, adapter, test_frame)
    metrics = {
        "val": task.evaluate(adapter, val_frame, task.predictions(model, adapter, val_frame), data.val or data.data),
        "test": task.evaluate(adapter, test_frame, test_probabilities, data.test or data.data),
        **adapter.report(test_frame, test_probabilities),
    }
    log.info("test %s", task.headline(metrics["test"]))
    for baseline, scores in metrics.get("baselines", {}).items():
        log.info("  baseline %-12s accuracy %.4f, macro F1 %.4f", baseline, scores["accuracy"], scores["macro_f1"])
    return estimator, test_probabilities, metrics


def _walk_forward(estimator, adapter, frame, data, settings):
    """Fit and test on each expanding-window fold the adapter cuts; return the last fold's estimator, test frame and
    probabilities, and metrics: the last fold's, with ``walk_forward`` holding every fold's and their mean."""
    if data.test or data.val:
        raise ConfigError("--walk-forward makes its own test and validation splits; leave out --test and --val")
    folds = []
    pairs = adapter.walk_forward_folds(frame, data.walk_forward, data.data)
    for number, (earlier, test_frame) in enumerate(pairs, 1):
        log.info("walk-forward fold %d/%d: test %s to %s", number, len(pairs), *adapter.period(test_frame))
        fold_adapter = copy.deepcopy(adapter)  # prepared (columns found), not fitted
        try:
            train_frame, val_frame = fold_adapter.split(earlier, settings.val_size, settings.seed, data.data, "val")
        except DataError as error:
            raise DataError(f"walk-forward fold {number} of {len(pairs)}: {error}; or use fewer folds") from None
        if len(train_frame) < len(test_frame):
            log.warning("fold %d learns from %d windows and is tested on %d; its result says little (use fewer "
                        "folds or more history)", number, len(train_frame), len(test_frame))
        fitted, probabilities, metrics = _fit_and_test(clone(estimator), fold_adapter, train_frame, val_frame,
                                                       test_frame, data)
        folds.append({"fold": number, "train_period": list(adapter.period(train_frame)), **metrics})
    mean = _mean(folds)
    log.info(f"walk-forward mean over {len(folds)} folds: model accuracy {mean['test']['accuracy']:.4f}"
             + "".join(f", {name} {scores['accuracy']:.4f}" for name, scores in mean.get("baselines", {}).items()))
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


def evaluate_run(run_dir, data, format=None, encoding="utf-8", columns=None, output=None):
    """Metrics of a run's model on a labelled file; written as JSON to ``output`` (default in the run)."""
    model, adapter, _ = load_run(run_dir)
    frame = _read_for(adapter, data, format, encoding, columns, labeled=True)
    adapter.task.check_held_out(adapter, adapter.classes_, {str(data): frame})
    probabilities = adapter.task.predictions(model, adapter, frame)
    metrics = {**adapter.task.evaluate(adapter, frame, probabilities, data), **adapter.report(frame, probabilities)}
    if metrics.get("in_sample_windows"):
        log.warning("%d of the %d windows in %s fall in the model's training period: those results are in-sample",
                    metrics["in_sample_windows"], len(frame), data)
    output = Path(output) if output else Path(run_dir) / f"evaluate-{_stem(data)}.json"
    write_json(output, {"data": str(data), "sha256": _sha256(data), **metrics})
    return metrics, output


def report_lines(config, metrics):
    """What ``seqclf evaluate`` and ``seqclf info`` print about the task's and the kind's own measures (entities,
    cross-entropy, baselines), from a run's ``config.json`` and metrics."""
    return tasks.of_run(config).report_lines(metrics) + get_adapter(config["kind"]).report_lines(metrics)


def predict_run(run_dir, data=None, texts=None, format=None, encoding="utf-8", columns=None):
    """Predictions of a run's model: a table of id, predicted label and one probability per class."""
    model, adapter, _ = load_run(run_dir)
    if texts is not None and not adapter.reads_texts:
        raise ConfigError(f"--text applies to text models; {run_dir} holds a {adapter.kind} model: pass a data file")
    frame = pd.DataFrame({"text": list(texts)}) if texts is not None else None
    frame = _read_for(adapter, data, "lines" if texts is not None else format, encoding, columns, labeled=False,
                      frame=frame)
    return adapter.task.prediction_table(adapter, frame, adapter.task.predictions(model, adapter, frame))


def run_info(run_dir):
    """What a run is: settings, data summary, parameter count and metrics (reads only JSON)."""
    config = read_config(run_dir)
    metrics_path = Path(run_dir) / METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    return config, metrics


def _split(adapter, frame, data, settings):
    """Train, validation and test examples: from their own files, or split off by series (stratified); from
    shards, the training rows as a stream and held-out rows chosen by a hash of the row number."""
    read = lambda path: adapter.prepare(read_table(path, adapter.task.read_format(path, data.format), data.encoding),
                                        path)
    if isinstance(frame, Shards):
        frame.hold_out(0.0 if data.val else settings.val_size, 0.0 if data.test else settings.test_size)
        held_out = [read(path) if path else frame.frame(part, adapter.prepare)
                    for part, path in (("val", data.val), ("test", data.test))]
        return RowStream(frame, adapter), *held_out
    if data.test:
        test = read(data.test)
    else:
        frame, test = adapter.split(frame, settings.test_size, settings.seed, data.data, "test")
    if data.val:
        val = read(data.val)
    else:
        frame, val = adapter.split(frame, settings.val_size / (1 - (0 if data.test else settings.test_size)),
                                   settings.seed, data.data, "val")
    return frame, val, test


def _read_for(adapter, data, format, encoding, columns, labeled, frame=None):
    """Read a table for a loaded run; stored column names give way to auto-detection when absent."""
    if frame is None:
        frame = read_table(data, adapter.task.read_format(data, format), encoding)
    columns = {k: v for k, v in (columns or {}).items() if v is not None}
    for name, value in vars(adapter).items():
        if name.endswith("_col") and value not in frame.columns and name not in columns:
            setattr(adapter, name, None)
    for name, value in columns.items():
        setattr(adapter, name, value)
    return adapter.prepare(frame, str(data) if data is not None else "--text", labeled=labeled)


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
