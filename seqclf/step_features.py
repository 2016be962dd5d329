"""Features of the input at every step that a hidden unit might track (``seqclf cells --feature NAME``).

Built in, computed from the raw text for text and character models (Karpathy, Johnson and Fei-Fei
2015 found cells of a character model tracking each): ``quote`` (inside double quotes),
``line-position`` (characters since the line began), ``bracket-depth`` (brackets opened and not yet
closed), ``indent`` (leading spaces of the line) and ``comment`` (inside a ``#`` or ``//`` comment);
``step`` (the position in the sequence) for every kind; and, for sensor data in a long table (a row
per step), any numeric or boolean column, cut into the same series and windows as the channels.

Each is computed per character of a text and read off at the character a step stands for: each
character for character models, a word's first character for word models.
"""

import re
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

WORD = re.compile(r"\S+")
PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']")  # what Keras' strip_punctuation removes
OPENING, CLOSING = "([{", ")]}"


def _quote(text):
    inside, values = False, np.zeros(len(text))
    for i, char in enumerate(text):
        if char == '"':
            inside = not inside
        values[i] = inside
    return values


def _line_position(text):
    values, position = np.zeros(len(text)), 0
    for i, char in enumerate(text):
        values[i] = position
        position = 0 if char == "\n" else position + 1
    return values


def _bracket_depth(text):
    values, depth = np.zeros(len(text)), 0
    for i, char in enumerate(text):
        depth += char in OPENING
        values[i] = depth
        depth = max(0, depth - (char in CLOSING))
    return values


def _indent(text):
    values, indent, leading = np.zeros(len(text)), 0, True
    for i, char in enumerate(text):
        if char == "\n":
            indent, leading = 0, True
        elif leading and char in " \t":
            indent += 1 if char == " " else 4
        else:
            leading = False
        values[i] = indent
    return values


def _comment(text):
    values, inside = np.zeros(len(text)), False
    for i, char in enumerate(text):
        if char == "\n":
            inside = False
        elif char == "#" or text.startswith("//", i):
            inside = True
        values[i] = inside
    return values


@dataclass(frozen=True)
class TextFeature:
    """A feature of every character of a text."""

    name: str
    description: str
    boolean: bool
    compute: callable  # text -> (len(text),) values


TEXT_FEATURES = {feature.name: feature for feature in (
    TextFeature("quote", "inside double quotes", True, _quote),
    TextFeature("line-position", "characters since the line began", False, _line_position),
    TextFeature("bracket-depth", "brackets ( [ { opened and not yet closed", False, _bracket_depth),
    TextFeature("indent", "leading spaces of the line (a tab counts 4)", False, _indent),
    TextFeature("comment", "inside a # or // comment, up to the line's end", True, _comment),
)}
STEP = "step"


@dataclass
class StepFeature:
    """A feature's value at each model step, ``(n, T)`` (NaN where it has none), and whether it is boolean."""

    name: str
    values: np.ndarray
    boolean: bool


def available(adapter, table=None):
    """The feature names that apply to ``adapter``'s kind of data (and, for sensor long tables, ``table``'s columns)."""
    if adapter.kind in ("text", "chars"):
        return [STEP, *TEXT_FEATURES]
    if adapter.kind == "sensor" and table is not None and "values" not in table.columns:
        roles = {adapter.series_col, adapter.time_col, adapter.label_col, *adapter.channels}
        return [STEP] + [c for c in table.columns if c not in roles and _numeric_or_boolean(table[c])]
    return [STEP]


def step_features(names, adapter, frame, table, n_steps, factor=1, characters=False):
    """Each feature of ``names`` at the model's steps of the examples ``frame`` (``adapter.prepare``'s rows):
    ``[StepFeature]``, arrays ``(len(frame), n_steps)``.

    ``table`` is the table the examples came from (for a sensor column), ``factor`` how many input steps one
    model step averages (``--downsample``), ``characters`` whether a text model's steps are characters.
    """
    known = available(adapter, table)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"unknown feature {unknown[0]!r} for {adapter.kind} data; choose from {', '.join(known)}")
    features = []
    for name in names:
        if name == STEP:
            values = np.tile(np.arange(n_steps, dtype=float), (len(frame), 1))
            features.append(StepFeature(name, values, False))
        elif adapter.kind in ("text", "chars"):
            feature = TEXT_FEATURES[name]
            features.append(StepFeature(name, _text_values(feature, adapter, frame, n_steps, characters),
                                        feature.boolean))
        else:
            features.append(_column_values(name, adapter, frame, table, n_steps, factor))
    return features


def step_positions(text, characters):
    """Where each step of ``text`` starts: every character, or each word Keras' ``TextVectorization`` keeps (split on
    whitespace, punctuation stripped, empty words dropped)."""
    if characters:
        return np.arange(len(text))
    return np.array([m.start() for m in WORD.finditer(text) if PUNCTUATION.sub("", m.group())], dtype=int)


def _text_values(feature, adapter, frame, n_steps, characters):
    values = np.full((len(frame), n_steps), np.nan)
    if adapter.kind == "chars":  # consecutive windows of one text: computed over it all, so a quote spans windows
        inputs = list(frame["input"])
        text_values = feature.compute("".join(inputs))
        offsets = np.concatenate([[0], np.cumsum([len(piece) for piece in inputs])])
        for row, piece in enumerate(inputs):
            length = min(len(piece), n_steps)
            values[row, :length] = text_values[offsets[row]:offsets[row] + length]
        return values
    for row, text in enumerate(adapter.texts(frame)):
        positions = step_positions(text, characters)[:n_steps]
        values[row, :len(positions)] = feature.compute(text)[positions]
    return values


def _column_values(name, adapter, frame, table, n_steps, factor):
    """A long table's column cut into the examples as the channels were (same series, time order and windows)."""
    from .data.sensor import SensorAdapter

    config = {**adapter.get_config(), "channels": [name], "label_col": None}
    column = table.assign(**{name: table[name].astype(float)})
    examples = SensorAdapter(**{k: v for k, v in config.items() if k != "kind"}).prepare(column, "the data",
                                                                                          labeled=False)
    values = np.full((len(frame), n_steps), np.nan)
    for row, series in enumerate(examples["values"][:len(frame)]):
        series = series[:, 0]
        if factor > 1:  # as StepAveraging: the mean of each block of `factor` steps
            blocks = len(series) // factor + (len(series) % factor > 0)
            series = np.array([np.nanmean(series[k * factor:(k + 1) * factor]) for k in range(blocks)])
        length = min(len(series), n_steps)
        values[row, :length] = series[:length]
    boolean = bool(np.isin(table[name].dropna().astype(float).unique(), (0.0, 1.0)).all())
    return StepFeature(name, values, boolean)


def _numeric_or_boolean(column):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
