"""The run directory: written under a temporary name, renamed only when complete."""

import json
import os
import shutil
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .errors import RunDirectoryError

CONFIG = "config.json"
MODEL = "model.keras"
LABELS = "labels.txt"
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
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


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


def read_labels(path):
    """Class names in output order, from ``labels.txt``."""
    return (Path(path) / LABELS).read_text(encoding="utf-8").splitlines()


def write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves no half file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
