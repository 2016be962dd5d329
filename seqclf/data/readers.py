"""Read tables from CSV, TSV, Parquet, JSON Lines and plain-text files (or standard input),
sensor series from UCR/UEA ``.ts`` and NumPy ``.npz`` files, and tagged sentences from
CoNLL-U and CoNLL column files.

Every reader returns a :class:`pandas.DataFrame`. Problems with the file itself (missing,
empty, wrong encoding, malformed rows) raise :class:`~seqclf.errors.DataError` naming the file
and the place in it.

The ``ts`` and ``npz`` readers return a *nested sequence frame*: one row per series with

* ``id`` (int64): the case number, counting from 1;
* ``values`` (object): a float32 :class:`numpy.ndarray` of shape ``(n_timesteps, n_channels)``
  per cell, missing values as NaN; cases may differ in length;
* ``label`` (only when the file has labels): one label per case, or, for an ``.npz`` whose
  ``y`` has shape ``(n_samples, n_timesteps)``, a 1-D array of per-step labels per cell;

and ``frame.attrs["channels"] == ["channel_1", ..., "channel_C"]``.

The ``conllu`` and ``conll`` readers return a *sentence frame*: one row per sentence with ``id``
(the ``# sent_id`` comment, else the sentence number from 1) and one list per column:
``tokens`` and, for CoNLL-U, ``lemma``, ``upos``, ``xpos``, ``feats``, ``head``, ``deprel``,
``deps``, ``misc`` (multiword-token ranges and empty nodes are left out; ``_`` is kept as
given); for CoNLL column files, whose token is first and tag last, ``tags`` and any columns
between as ``column_2``, ``column_3``, ...
"""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .conll import read_conll, read_conllu

#: File name suffix -> format name.
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "lines",
    ".ts": "ts",
    ".npz": "npz",
    ".conllu": "conllu",
    ".conll": "conll",
    ".iob": "conll",
    ".bio": "conll",
}
FORMATS = ("csv", "tsv", "parquet", "jsonl", "lines", "ts", "npz", "conllu", "conll")
STDIN = "-"


def detect_format(path):
    """Return the format name for ``path`` from its suffix.

    Examples
    --------
    >>> detect_format("reviews.tsv")
    'tsv'
    >>> detect_format("BasicMotions_TRAIN.ts")
    'ts'
    """
    if str(path) == STDIN:
        return "lines"
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise DataError(
            f"cannot tell the format of {path} from its suffix {suffix or '(none)'!r}; "
            f"use one of {known} or pass --format {'|'.join(FORMATS)}"
        )
    return SUFFIX_FORMATS[suffix]


def read_table(path, format=None, encoding="utf-8"):
    """Read ``path`` (or ``"-"`` for standard input) into a DataFrame.

    Parameters
    ----------
    path : str or Path
        The file to read, or ``"-"`` for standard input.
    format : {"csv", "tsv", "parquet", "jsonl", "lines", "ts", "npz"}, optional
        Overrides the format guessed from the suffix. ``lines`` reads one text per line
        into a column named ``text``. ``ts`` (UCR/UEA archive) and ``npz`` (arrays ``X`` and
        optional ``y``) return a nested sequence frame (see the module docstring).
    encoding : str, default "utf-8"
        Text encoding of the file (ignored for Parquet and npz).

    Examples
    --------
    >>> frame = read_table("datasets/movie_reviews_sample.csv")  # doctest: +SKIP
    >>> list(frame.columns)  # doctest: +SKIP
    ['text', 'label']
    """
    format = format or detect_format(path)
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    raw = _read_bytes(path)
    if not raw.strip():
        raise DataError(f"{_name(path)} is empty; it needs a header row and at least one data row")
    if format == "parquet":
        frame = _read_parquet(raw, path)
    elif format == "npz":
        frame = _read_npz(raw, path)
    else:
        text = _decode(raw, path, encoding)
        frame = _TEXT_READERS[format](text, path)
    if frame.empty:
        raise DataError(f"{_name(path)} has no data rows")
    frame.columns = [str(column) for column in frame.columns]
    return frame


def _name(path):
    return "standard input" if str(path) == STDIN else str(path)


def _read_bytes(path):
    if str(path) == STDIN:
        return sys.stdin.buffer.read()
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass a data file")
    return path.read_bytes()


def _decode(raw, path, encoding):
    try:
        return raw.decode(encoding).removeprefix("\ufeff")
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; try utf-8, latin-1 or cp1252") from None
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"{_name(path)} is not valid {encoding}: byte 0x{raw[error.start]:02x} on line {line}; "
            f"re-save the file as UTF-8 or pass --encoding (for example latin-1)"
        ) from None


def _read_delimited(text, path, sep):
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as error:
        raise DataError(f"{_name(path)} is not a valid {'TSV' if sep == chr(9) else 'CSV'} file: {error}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{_name(path)} has no columns") from None


def _read_jsonl(text, path):
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{_name(path)} line {number} is not valid JSON: {error.msg}") from None
        if not isinstance(record, dict):
            raise DataError(f"{_name(path)} line {number} is not a JSON object; JSON Lines needs one object per line")
        records.append(record)
    return pd.DataFrame.from_records(records)


def _read_lines(text, path):
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return pd.DataFrame({"text": lines})


def _read_parquet(raw, path):
    try:
        return pd.read_parquet(io.BytesIO(raw))
    except Exception as error:  # pyarrow raises many unrelated types for a bad file
        raise DataError(f"{_name(path)} is not a valid Parquet file: {error}") from None


def _nested_frame(series, labels, n_channels):
    cells = pd.Series(series, dtype=object)
    frame = pd.DataFrame({"id": np.arange(1, len(cells) + 1, dtype=np.int64), "values": cells})
    if labels is not None:
        frame["label"] = pd.Series(labels, dtype=object)
    frame.attrs["channels"] = [f"channel_{number}" for number in range(1, n_channels + 1)]
    return frame


def _read_ts(text, path):
    name = _name(path)
    lines = text.split("\n")
    classes, dimensions, data_line = _ts_header(lines, name)
    series, labels = [], []
    for number, line in enumerate(lines[data_line:], start=data_line + 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        body = line
        if classes is not None:
            body, label = _ts_label(line, classes, name, number)
            labels.append(label)
        channels = body.split(":")
        if dimensions is None:
            dimensions = len(channels)
        if len(channels) != dimensions:
            raise DataError(
                f"{name} line {number} has {len(channels)} channels but {dimensions} were expected "
                f"(from @dimensions or the first case); separate channels with ':' "
                f"and check the @classLabel header"
            )
        series.append(_ts_case(channels, name, number))
    if not series:
        raise DataError(f"{name} has no cases after @data (line {data_line}); add one case per line")
    return _nested_frame(series, labels if classes is not None else None, dimensions)


def _ts_header(lines, name):
    """``(class labels or None, @dimensions or None, the line number of @data)`` from a ``.ts`` file's header."""
    classes = dimensions = None
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise DataError(
                f"{name} line {number} is data before the @data line; "
                f"end the header with a line reading @data"
            )
        keyword, *words = line.split()
        keyword = keyword.lower()
        flag = words[0].lower() if words else ""
        if keyword == "@data":
            return classes, dimensions, number
        if keyword == "@timestamps" and flag == "true":
            raise DataError(
                f"{name} line {number}: @timeStamps true (values as (time,value) pairs) is not supported; "
                f"write plain comma-separated values and @timeStamps false"
            )
        if keyword == "@targetlabel" and flag == "true":
            raise DataError(
                f"{name} line {number}: @targetLabel true marks regression targets, but seqclf classifies; "
                f"use a file with @classLabel true and class labels"
            )
        if keyword == "@classlabel":
            if flag == "true":
                if len(words) < 2:
                    raise DataError(
                        f"{name} line {number}: @classLabel true lists no class labels; "
                        f"write them after it, for example @classLabel true walk run"
                    )
                classes = set(words[1:])
            elif flag != "false":
                raise DataError(f"{name} line {number}: @classLabel must be followed by true or false")
        if keyword == "@dimensions":
            if not flag.isdigit() or int(flag) < 1:
                raise DataError(f"{name} line {number}: @dimensions needs a positive whole number, not {flag!r}")
            dimensions = int(flag)
    raise DataError(
        f"{name} has no @data line (read to line {len(lines)}); "
        f"a .ts file needs its @ headers, then @data, then one case per line"
    )


def _ts_label(line, classes, name, number):
    """``(the case's values, its class label)``: the label follows the last ':'."""
    body, colon, label = line.rpartition(":")
    label = label.strip()
    if not colon or not label or "," in label:
        raise DataError(
            f"{name} line {number} has no class label; @classLabel true needs the label "
            f"after the last ':' of every case"
        )
    if label not in classes:
        raise DataError(
            f"{name} line {number}: class label {label!r} is not among the declared labels "
            f"{' '.join(sorted(classes))}; add it to the @classLabel line or fix the case"
        )
    return body, label


def _ts_case(channels, name, number):
    columns = []
    for channel, chunk in enumerate(channels, start=1):
        if not chunk.strip():
            raise DataError(f"{name} line {number}: channel {channel} is empty; give it at least one value or '?'")
        try:
            column = np.array(chunk.replace("?", "nan").split(","), dtype=np.float32)
        except ValueError:  # the slow path finds the bad value for the message
            tokens = enumerate(chunk.split(","), start=1)
            column = np.array([_ts_value(token, name, number, channel, at) for at, token in tokens], dtype=np.float32)
        columns.append(column)
    case = np.full((max(len(column) for column in columns), len(columns)), np.nan, dtype=np.float32)
    for index, column in enumerate(columns):
        case[: len(column), index] = column
    return case


def _ts_value(token, name, number, channel, position):
    token = token.strip()
    if token == "?":
        return np.nan
    try:
        return float(token)
    except ValueError:
        raise DataError(
            f"{name} line {number}, channel {channel}, value {position}: {token!r} is not a number or '?'; "
            f"separate values with ',' and channels with ':'"
        ) from None


def _read_npz(raw, path):
    name = _name(path)
    how = "save it with numpy.savez(path, X=series, y=labels)"
    try:
        archive = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as error:  # numpy raises ValueError, OSError or zipfile errors for a bad file
        raise DataError(f"{name} is not a valid .npz file: {error}; {how}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{name} is a single .npy array, not an .npz archive; {how}")
    with archive:
        if "X" not in archive.files:
            found = ", ".join(archive.files) or "none"
            raise DataError(f"{name} has no array named X (found: {found}); {how}")
        try:
            X = archive["X"]
            y = archive["y"] if "y" in archive.files else None
        except Exception as error:  # object arrays need pickle; damaged members raise zip errors
            raise DataError(
                f"{name} has an array that cannot be read: {error}; save numbers and strings, not Python objects"
            ) from None
    if X.ndim == 2:
        X = X[:, :, np.newaxis]
    if X.ndim != 3 or 0 in X.shape[1:]:
        raise DataError(
            f"{name}: X has shape {X.shape}; expected (n_samples, n_timesteps, n_features) "
            f"or (n_samples, n_timesteps) with at least one time step"
        )
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: X has non-numeric dtype {X.dtype}; store the series as numbers (NaN for missing)")
    X = X.astype(np.float32)
    labels = None
    if y is not None:
        if y.ndim not in (1, 2) or len(y) != len(X):
            raise DataError(
                f"{name}: y has shape {y.shape} but X holds {len(X)} samples; "
                f"expected y of shape ({len(X)},) or ({len(X)}, {X.shape[1]})"
            )
        if y.ndim == 2 and y.shape[1] != X.shape[1]:
            raise DataError(
                f"{name}: y has {y.shape[1]} labels per sample but X has {X.shape[1]} time steps; "
                f"per-step labels need y of shape ({len(X)}, {X.shape[1]})"
            )
        labels = y.tolist() if y.ndim == 1 else list(y)
    return _nested_frame(list(X), labels, X.shape[2])


_TEXT_READERS = {
    "csv": lambda text, path: _read_delimited(text, path, ","),
    "tsv": lambda text, path: _read_delimited(text, path, "\t"),
    "jsonl": _read_jsonl,
    "lines": _read_lines,
    "ts": _read_ts,
    "conllu": read_conllu,
    "conll": read_conll,
}
