"""Find and check the columns of a table: auto-detection by common names, clear errors."""

import numpy as np
import pandas as pd

from ..errors import DataError

LABEL_NAMES = ("label", "labels", "sentiment", "target", "class", "y", "activity")
TEXT_NAMES = ("text", "sentence", "review", "content")
TOKEN_NAMES = ("tokens", "words", "form", "token")
TAG_NAMES = ("upos", "tags", "tag", "ner_tags", "pos_tags", "ner", "pos", "labels", "label")
MAX_ROWS_LISTED = 5


def find_column(frame, given, candidates, role, option, source):
    """Return the column of ``frame`` that holds ``role``.

    ``given`` (the user's choice) must exist; otherwise the first of ``candidates`` present
    (case-insensitive) is taken; ``None`` if there is none.

    Examples
    --------
    >>> frame = pd.DataFrame({"Sentence": ["a"], "Label": [1]})
    >>> find_column(frame, None, TEXT_NAMES, "text", "--text-col", "data.csv")
    'Sentence'
    """
    columns = list(frame.columns)
    if given is not None:
        if given not in columns:
            raise DataError(
                f"{source} has no {role} column {given!r} (its columns: {', '.join(columns)}); "
                f"check {option}"
            )
        return given
    by_lower = {str(column).lower(): column for column in columns}
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def require_column(frame, given, candidates, role, option, source):
    """Like :func:`find_column`, but a missing column is an error that says how to name it."""
    column = find_column(frame, given, candidates, role, option, source)
    if column is None:
        raise DataError(
            f"could not find the {role} column in {source} (its columns: {', '.join(frame.columns)}); "
            f"name it one of {', '.join(candidates)} or pass {option} NAME"
        )
    return column


def row_list(mask):
    """Describe the data rows where ``mask`` is true, counting from 1, for error messages."""
    rows = [str(i + 1) for i in mask.to_numpy().nonzero()[0]]
    shown = ", ".join(rows[:MAX_ROWS_LISTED])
    more = f" and {len(rows) - MAX_ROWS_LISTED} more" if len(rows) > MAX_ROWS_LISTED else ""
    return f"data row{'s' if len(rows) > 1 else ''} {shown}{more}"


def blank(series):
    """True where a cell is missing or holds only whitespace."""
    return series.isna() | series.astype(str).str.strip().eq("")


def check_labels(frame, column, source, option="--label-col"):
    """Raise if any label in ``column`` is missing or blank."""
    missing = blank(frame[column])
    if missing.any():
        raise DataError(
            f"{source} has empty labels in column {column!r} at {row_list(missing)}; "
            f"fill them in or remove those rows (or choose another column with {option})"
        )


def label_strings(series):
    """Class names as strings, kept as given (integers stay ``"3"``, not ``"3.0"``)."""
    if pd.api.types.is_float_dtype(series) and np.isfinite(series).all() and (series == series.round()).all():
        series = series.astype("int64")
    return series.astype(str).str.strip()
