"""The run directory: written under a temporary name, renamed only when complete, and read back.

A run is written and read from the kind's and the task's configuration alone (``config.json``
names both), with the model, its labels and its SavedModel export beside it.
"""

import json
import os
import platform
import re
import shutil
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from .version import __version__
from .errors import RunDirectoryError

CONFIG = "config.json"
MODEL = "model.keras"
LABELS = "labels.txt"
LOGS = "logs"  # TensorBoard's, with tensorboard on
METRICS = "metrics.json"
REQUIRED = (CONFIG, MODEL, LABELS)


def default_run_dir(arch, now=None):
    """``runs/<date-time>-<arch>``, for example ``runs/20261122-071500-bigru``."""
    return Path("runs") / f"{(now or datetime.now()):%Y%m%d-%H%M%S}-{arch}"


@contextmanager
def building(final):
    """Yield a temporary directory beside ``final``; rename it to ``final`` if the block succeeds.

    On any error (or Ctrl-C) the temporary directory is removed, so no run directory is ever
    left that looks complete.
    """
    final = Path(final)
    if final.exists():
        raise RunDirectoryError(f"{final} exists already; pass another --out or remove it")
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        yield partial
        partial.rename(final)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise RunDirectoryError(f"could not write the run directory {final}: {error.strerror or error} "
                                f"({error.filename or partial}); nothing was kept") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


@contextmanager
def claimed(final):
    """Hold ``final`` for this process while its run is made: a second process given the same directory refuses.

    The claim is a lock file beside it (``.NAME.lock``, holding the process id), created
    exclusively; one left by a process that no longer runs (killed with -9) is taken over.
    """
    final = Path(final)
    lock = final.parent / f".{final.name}.lock"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        handle = _create_exclusively(lock)
        if handle is None:
            owner = _owner(lock)
            if owner is not None and _running(owner):
                raise RunDirectoryError(f"another seqclf process (pid {owner}) is writing {final}; wait for it to "
                                        f"finish or pass another --out")
            lock.unlink(missing_ok=True)  # left behind by a process that was killed, with its partial run
            shutil.rmtree(final.parent / f".{final.name}.partial-{owner}", ignore_errors=True)
            handle = _create_exclusively(lock)
            if handle is None:
                raise RunDirectoryError(f"another seqclf process just claimed {final}; pass another --out")
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
    except OSError as error:
        raise RunDirectoryError(f"could not claim the run directory {final}: {error.strerror or error}") from None
    try:
        yield final
    finally:
        lock.unlink(missing_ok=True)


def _create_exclusively(path):
    try:
        return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None


def _owner(lock):
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def write_json(path, data):
    """Write ``data`` as indented JSON, atomically (temporary file, then rename)."""
    write_atomically(path, json.dumps(data, indent=2, default=str) + "\n")


def check_run_dir(path):
    """Raise unless ``path`` is a complete run directory."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(f"{path} is not a run directory (it does not exist); pass the --out of seqclf fit")
    missing = [name for name in REQUIRED if not (path / name).exists()]
    if missing:
        raise RunDirectoryError(f"{path} is not a complete run directory: {', '.join(missing)} missing")
    return path


def read_config(path):
    """The ``config.json`` of a run directory."""
    return json.loads((check_run_dir(path) / CONFIG).read_text(encoding="utf-8"))


#: How ``labels.txt`` writes the characters that would break its one-name-per-line layout.
ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def write_labels(path, classes):
    r"""Write class names to ``labels.txt``, one per line; a backslash, newline, carriage return or tab is escaped.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as run:
    ...     write_labels(run, ["pos", "\n", " ", "a\\b"])
    ...     read_labels(run)
    ['pos', '\n', ' ', 'a\\b']
    """
    table = str.maketrans(ESCAPES)
    (Path(path) / LABELS).write_text("".join(f"{name.translate(table)}\n" for name in classes), encoding="utf-8")


def read_labels(path):
    """Class names in output order, from ``labels.txt``."""
    unescape = {code: char for char, code in ESCAPES.items()}
    lines = (Path(path) / LABELS).read_text(encoding="utf-8").split("\n")[:-1]
    return [re.sub(r"\\.", lambda m: unescape.get(m.group(), m.group()), line) for line in lines]


def load_model(path):
    """Load a ``.keras`` model with Keras' safe mode on: only registered classes, no Python code from the file.

    A file that needs code to load (a ``Lambda`` layer, an unknown class) or is damaged is a
    :class:`RunDirectoryError`, not whatever Keras raised.
    """
    import keras

    from . import models, optimizers, training  # noqa: F401  (register seqclf's layers, cells, optimizer, metric)

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises ValueError, TypeError, KeyError, zipfile errors, ...
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunDirectoryError(f"{path} cannot be loaded safely: {message[:300]}") from None


def write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves no half file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def write_run(estimator, out, name="model", settings=None, data=None, test=None):
    """Write a fitted estimator as a run directory (atomically).

    ``test``, a ``(frame, probabilities, metrics)`` triple, adds the test reports: metrics.json,
    the confusion matrix, the test predictions and whatever the task and the kind plot. Every run gets
    ``report.html`` (:mod:`seqclf.report`).
    """
    import pandas as pd

    from .evaluation import plot_learning_curves
    from .models.cudnn import kernels
    from .report import REPORT, render, write_examples

    adapter, model, result = estimator.adapter_, estimator.model_, getattr(estimator, "training_", None)
    settings = settings or estimator.settings()
    rows = dict(getattr(estimator, "rows_", {}))
    if test is not None:
        test_frame, test_probabilities, metrics = test
        rows["test"] = len(test_frame)
    config = {
        "seqclf_version": __version__, "kind": adapter.kind, "task": adapter.task.name,
        "adapter": adapter.get_config(), "settings": {**asdict(settings), "arch": estimator.arch_}, "data": data or {},
        "data_summary": {**adapter.summary(), "rows": rows, "class_counts": getattr(estimator, "class_counts_", {})},
        "model": {"n_parameters": estimator.n_parameters_, "export_name": name, "gpu_kernels": kernels(model),
                  **{key: getattr(estimator, f"{key}_", getattr(settings, key))
                     for key in ("pooling", "dropout", "class_weight", "label_smoothing")}},
        "versions": _versions(),
    }
    with building(out) as partial:
        model.save(partial / MODEL)
        write_labels(partial, adapter.classes_)
        adapter.task.export(model, adapter, partial / "export" / name / "1")
        if estimator.history_:
            pd.DataFrame(estimator.history_).rename_axis("epoch").rename(lambda e: e + 1).to_csv(partial / "history.csv")
            plot_learning_curves(estimator.history_, partial / "learning_curves.png",
                                 result.best_epoch if result else None)
        if test is not None:
            adapter.task.write_test_reports(partial, adapter, test_frame, test_probabilities, metrics)
            write_examples(partial, adapter.task, adapter, test_frame, test_probabilities)
            adapter.write_plots(partial, test_frame, test_probabilities)
            write_json(partial / METRICS, {
                **metrics, "train_seconds": round(result.seconds, 3), "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch, "stopped_by": result.stopped_by, "budget": result.budget,
                "classes": adapter.classes_,
            })
        logs = getattr(estimator, "tensorboard_dir_", None)
        if logs is not None and Path(logs).is_dir():
            shutil.copytree(logs, partial / LOGS)
        write_json(partial / CONFIG, config)
        write_atomically(partial / REPORT, render(partial, shown_as=Path(out).resolve()))
    return Path(out)


def load_run(run_dir):
    """Load what a run wrote: ``(model, adapter, config)``; ``adapter.classes_`` are the class names and
    ``adapter.task`` the task (runs written before tasks were objects included)."""
    from .data.adapters import get_adapter

    config = read_config(run_dir)
    model = load_model(Path(run_dir) / MODEL)
    adapter = get_adapter(config["kind"])(**{**config["adapter"], "task": config.get("task", config["adapter"].get("task"))})
    adapter.classes_ = read_labels(run_dir)
    adapter.restore(config["data_summary"])
    return model, adapter, config


def read_history(run_dir):
    """Loss and accuracy per epoch from ``history.csv`` (``{}`` when the run has none)."""
    import pandas as pd

    path = Path(run_dir) / "history.csv"
    return pd.read_csv(path, index_col=0).to_dict(orient="list") if path.exists() else {}


def _versions():
    import keras
    import numpy as np
    import pandas as pd
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
