"""Read tables from CSV, TSV, Parquet, JSON Lines and plain-text files (or standard input).

Every reader returns a :class:`pandas.DataFrame`. Problems with the file itself (missing,
empty, wrong encoding, malformed rows) raise :class:`~seqclf.errors.DataError` naming the file
and the place in it.
"""

import io
import json
import sys
from pathlib import Path

import pandas as pd

from ..errors import DataError

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
}
FORMATS = ("csv", "tsv", "parquet", "jsonl", "lines")
STDIN = "-"


def detect_format(path):
    """Return the format name for ``path`` from its suffix.

    Examples
    --------
    >>> detect_format("reviews.tsv")
    'tsv'
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
    format : {"csv", "tsv", "parquet", "jsonl", "lines"}, optional
        Overrides the format guessed from the suffix. ``lines`` reads one text per line
        into a column named ``text``.
    encoding : str, default "utf-8"
        Text encoding of the file (ignored for Parquet).

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


_TEXT_READERS = {
    "csv": lambda text, path: _read_delimited(text, path, ","),
    "tsv": lambda text, path: _read_delimited(text, path, "\t"),
    "jsonl": _read_jsonl,
    "lines": _read_lines,
}
