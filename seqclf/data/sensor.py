"""The sensor adapter: numeric channels over time, one label per series, window or step.

Input comes in two shapes. A *long table* has one row per time step: a series id column, an
optional time column, numeric channel columns and a label column that is either constant
within a series or varies from step to step. A *nested table* (what the ``.ts`` and ``.npz``
readers and the Python API give) has one row per series with its values as an array
``(n_timesteps, n_channels)`` in a ``values`` column.

``prepare`` turns either into *examples*: one row per sequence the model sees (a whole series,
or a window of one), with the columns ``id`` (the series), ``start`` (the window's first step),
``values`` and the label. Splits keep the windows of one series together (:meth:`groups`).

Missing values are NaN (``?`` in ``.ts`` files) and are never filled in before the model sees
them: inside the model a NaN becomes the channel's training mean, and a step with no value at
all (padding after a shorter series, or a gap) is masked, so the recurrent layers skip it.
Normalisation statistics per channel are learned from the training split only and live in the
model as a Keras ``Normalization`` layer, so the export takes raw values.
"""

import logging
from collections import Counter

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..errors import ConfigError, DataError
from ..padding import nan_padded, padded
from .adapters import Adapter, encode_labels, register_adapter
from .columns import LABEL_NAMES, blank, check_labels, find_column, label_strings, require_column

log = logging.getLogger(__name__)

SERIES_NAMES = ("series_id", "series", "id", "recording", "subject", "session")
TIME_NAMES = ("time", "timestamp", "step", "t")
VALUES = "values"
WINDOW_LABELS = ("majority", "last")
MAX_IDS_LISTED = 5
TARGET_STEPS = 50  # --downsample auto: average steps until the median training example has about this many


@register_adapter
class SensorAdapter(Adapter):
    """Multichannel time series: one label per series or window (many-to-one) or per step (many-to-many).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> table = pd.DataFrame({"subject": [1] * 6 + [2] * 6, "ax": np.arange(12.0), "ay": np.ones(12),
    ...                       "label": ["walk"] * 6 + ["run"] * 6})
    >>> examples = SensorAdapter(window=4, stride=2).prepare(table, "example")
    >>> examples[["id", "start", "label"]].values.tolist()
    [[1, 0, 'walk'], [1, 2, 'walk'], [2, 0, 'run'], [2, 2, 'run']]
    >>> examples["values"][0].shape
    (4, 2)
    """

    kind = "sensor"
    description = "numeric channels over time: long tables (a row per step), UCR/UEA .ts, .npz"
    def __init__(self, label_col=None, task=None, **options):
        super().__init__(label_col, task, **options)
        self.channels = _channel_list(self.channels)
        self._check_options()

    def _check_options(self):
        for name in ("window", "stride", "downsample"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"The '{name}' parameter must be an integer >= 1. Got {value!r} instead.")
        if self.window is not None and self.window < 2:
            raise ConfigError(f"The 'window' parameter must be at least 2 steps. Got {self.window!r} instead.")
        if self.downsample not in (None, 1) and self.per_step:
            raise ConfigError(f"--downsample does not apply to --task {self.task.name} (it needs a label per input step)")
        if self.stride is not None and self.window is None:
            raise ConfigError("--stride needs --window (the windows it steps between)")
        if self.window_label not in WINDOW_LABELS:
            raise ConfigError(f"The 'window_label' parameter must be one of {', '.join(WINDOW_LABELS)}. "
                              f"Got {self.window_label!r} instead.")

    @classmethod
    def detect(cls, frame):
        """Sensor data: a nested table (a ``values`` column of arrays), or a long table of numbers with a series column."""
        if VALUES in frame.columns and len(frame) and isinstance(frame[VALUES].iloc[0], np.ndarray):
            return True
        series = find_column(frame, None, SERIES_NAMES, "series id", "--series-col", "")
        numeric = [c for c in frame.columns if c != series and pd.api.types.is_numeric_dtype(frame[c])]
        return series is not None and frame[series].duplicated().any() and bool(numeric)

    # --- from tables to examples -------------------------------------------------------------

    def prepare(self, frame, source, labeled=True):
        """Check ``frame`` and return its examples (``id``, ``start``, ``values``, label)."""
        nested = VALUES in frame.columns
        series = self._from_nested(frame, source, labeled) if nested else self._from_long(frame, source, labeled)
        lengths = series[VALUES].map(len)
        if (lengths < 2).any():
            raise DataError(f"{source} has series with a single time step ({_id_list(series['id'][lengths < 2])}); "
                            f"a recurrent model needs at least two steps per series")
        widths = series[VALUES].map(lambda v: v.shape[1])
        if widths.nunique() > 1:
            odd = widths != widths.iloc[0]
            raise DataError(f"{source} has series with different channel counts: {widths.iloc[0]} in series "
                            f"{series['id'].iloc[0]}, {widths[odd].iloc[0]} in series {series['id'][odd].iloc[0]}")
        if widths.iloc[0] != len(self.channels):
            raise DataError(f"{source} has {widths.iloc[0]} channels; expected {len(self.channels)} "
                            f"({', '.join(self.channels)})")
        infinite = series[VALUES].map(lambda v: bool(np.isinf(v).any()))
        if infinite.any():
            raise DataError(f"{source} has infinite values in series {_id_list(series['id'][infinite])}; leave a "
                            f"missing value empty (NaN) instead")
        if labeled:
            series = self._resolve_labels(series, source)
        return self._windows(series, source, labeled)

    def _from_nested(self, frame, source, labeled):
        if not len(frame):
            raise DataError(f"{source} holds no series")
        columns = {"id": frame["id"] if "id" in frame.columns else pd.RangeIndex(1, len(frame) + 1)}
        try:
            values = [np.asarray(v, dtype="float32") for v in frame[VALUES]]
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{source}: each cell of {VALUES!r} must be an array of numbers (n_timesteps, "
                            f"n_channels)") from None
        values = [v.reshape(len(v), 1) if v.ndim == 1 else v for v in values]
        if any(v.ndim != 2 for v in values):
            raise DataError(f"{source}: each cell of {VALUES!r} must be an array (n_timesteps, n_channels)")
        self.channels = self.channels or frame.attrs.get("channels") or [f"channel_{i + 1}" for i in
                                                                         range(values[0].shape[1])]
        columns[VALUES] = values
        if labeled:
            self.label_col = require_column(frame, self.label_col, LABEL_NAMES, "label", "--label-col", source)
            columns[self.label_col] = frame[self.label_col].map(lambda v: _label_cell(v, source))
        return pd.DataFrame(columns).reset_index(drop=True)

    def _from_long(self, frame, source, labeled):
        self.series_col = require_column(frame, self.series_col, SERIES_NAMES, "series id", "--series-col", source)
        self.time_col = find_column(frame, self.time_col, TIME_NAMES, "time", "--time-col", source)
        if labeled:
            self.label_col = require_column(frame, self.label_col, LABEL_NAMES, "label", "--label-col", source)
            check_labels(frame, self.label_col, source)
        roles = {self.series_col, self.time_col, self.label_col}
        if self.channels:
            for column in self.channels:
                find_column(frame, column, (), "channel", "--channels", source)
        else:
            self.channels = [c for c in frame.columns if c not in roles and _mostly_numeric(frame[c])]
            if not self.channels:
                raise DataError(f"{source} has no numeric channel columns besides {', '.join(sorted(filter(None, roles)))}; "
                                f"name them with --channels a,b,c")
        numbers = frame[self.channels].apply(pd.to_numeric, errors="coerce")
        bad = numbers.isna() & frame[self.channels].notna()
        if bad.to_numpy().any():
            column = bad.any().idxmax()
            row = int(bad[column].to_numpy().nonzero()[0][0])
            raise DataError(f"{source} has a non-numeric value {frame[column].iloc[row]!r} in channel {column!r} "
                            f"at data row {row + 1}; channels must hold numbers (leave a missing value empty)")
        frame = frame.assign(**{c: numbers[c] for c in self.channels})
        if frame[self.series_col].isna().any():
            raise DataError(f"{source} has rows without a series id in column {self.series_col!r}")
        if frame[self.series_col].map(lambda v: isinstance(v, (list, dict, np.ndarray))).any():
            raise DataError(f"{source}: the series ids in column {self.series_col!r} must be strings or numbers")
        if self.time_col is not None:
            frame = frame.sort_values([self.time_col], kind="stable")
        groups = frame.groupby(self.series_col, sort=False)
        columns = {"id": list(groups.groups), VALUES: [g[self.channels].to_numpy("float32") for _, g in groups]}
        if labeled:
            columns[self.label_col] = [g[self.label_col].to_numpy(dtype=object) for _, g in groups]
        return pd.DataFrame(columns)

    def _resolve_labels(self, series, source):
        """Per-step labels for many-to-many; one label per series or window for many-to-one."""
        labels = series[self.label_col]
        per_step = labels.map(lambda v: isinstance(v, np.ndarray))
        short = per_step & (labels.map(np.size) != series[VALUES].map(len))
        if short.any():
            raise DataError(f"{source}: series {series['id'][short].iloc[0]} has "
                            f"{np.size(labels[short].iloc[0])} labels for {len(series[VALUES][short].iloc[0])} steps")
        missing = labels.map(lambda v: bool(blank(pd.Series(np.atleast_1d(v))).any()))
        if missing.any():
            raise DataError(f"{source} has empty labels in series {_id_list(series['id'][missing])}; fill them in "
                            f"or remove those rows")
        if self.per_step:
            steps = [v if isinstance(v, np.ndarray) else np.full(len(x), v, dtype=object)
                     for v, x in zip(labels, series[VALUES])]
            return series.assign(**{self.label_col: steps})
        varying = labels.map(lambda v: isinstance(v, np.ndarray) and len(set(v.tolist())) > 1)
        if varying.any() and self.window is None:
            raise DataError(
                f"{source}: the labels change within series {_id_list(series['id'][varying])}; pass --task "
                f"many-to-many for a label per step, or --window N to label windows ({self.window_label} of their steps)")
        if not varying.any():
            labels = labels.map(lambda v: v[0] if isinstance(v, np.ndarray) else v)
        return series.assign(**{self.label_col: labels})

    def _windows(self, series, source, labeled):
        if self.window is None:
            return series.assign(start=0)[["id", "start", VALUES] + ([self.label_col] if labeled else [])]
        stride = self.stride or self.window
        rows, skipped = [], []
        labels = series[self.label_col] if labeled else [None] * len(series)
        for series_id, values, label in zip(series["id"], series[VALUES], labels):
            if len(values) < self.window:
                skipped.append(series_id)
            for start in range(0, len(values) - self.window + 1, stride):
                row = {"id": series_id, "start": start, VALUES: values[start:start + self.window]}
                if labeled:
                    row[self.label_col] = self._window_label(label, start)
                rows.append(row)
        if not rows:
            raise DataError(f"every series in {source} is shorter than --window {self.window} (the longest has "
                            f"{series[VALUES].map(len).max()} steps); pass a smaller --window")
        if skipped:
            log.warning("%s: %d series shorter than --window %d left out (%s)", source, len(skipped), self.window,
                        _id_list(pd.Series(skipped)))
        return pd.DataFrame(rows)

    def _window_label(self, labels, start):
        if not isinstance(labels, np.ndarray):
            return labels
        steps = labels[start:start + self.window]
        if self.per_step:
            return steps
        if self.window_label == "last":
            return steps[-1]
        return Counter(steps.tolist()).most_common(1)[0][0]

    # --- labels, splits and identities ----------------------------------------------------------

    def raw_labels(self, frame):
        labels = frame[self.label_col]
        if self.per_step:
            return pd.Series(np.concatenate(labels.to_numpy()) if len(labels) else [], dtype=object)
        return labels

    def split_labels(self, frame):
        if self.per_step:  # stratify by each example's most common step label
            return frame[self.label_col].map(lambda v: str(Counter(label_strings(pd.Series(v))).most_common(1)[0][0]))
        return label_strings(frame[self.label_col])

    def groups(self, frame):
        return frame["id"]

    def index(self, frame):
        return frame[["id", "start"]].reset_index(drop=True)

    def lengths(self, frame):
        """Steps per example."""
        return frame[VALUES].map(len).to_numpy()

    def targets(self, frame, source, unseen=None):
        if not self.per_step:
            return super().targets(frame, source, unseen)
        flat = encode_labels(label_strings(self.raw_labels(frame)), self.classes_, source, unseen)
        return padded(flat, self.lengths(frame), -1, "int64")

    # --- learning and the model --------------------------------------------------------------

    @property
    def n_channels_(self):
        return len(self.channels)

    def fit(self, train, source):
        """Learn classes and per-channel normalisation statistics from the training split."""
        self.fit_labels(train, source)
        steps = np.concatenate(train[VALUES].to_numpy())
        empty = np.isnan(steps).all(axis=0)
        if empty.any():
            raise DataError(f"{source}: channel {self.channels[int(empty.argmax())]!r} has no values in the "
                            f"training data; drop it (--channels)")
        with np.errstate(invalid="ignore"):
            mean, variance = np.nanmean(steps, axis=0), np.nanvar(steps, axis=0)
        constant = variance <= 1e-12 * np.maximum(1.0, mean ** 2)
        if constant.any():
            raise DataError(f"{source}: channel {self.channels[int(constant.argmax())]!r} is constant in the training "
                            f"data ({mean[constant.argmax()]:g}); it carries no information, drop it (--channels)")
        self.mean_, self.variance_ = mean.astype("float64").tolist(), variance.astype("float64").tolist()
        lengths = self.lengths(train)
        self.length_stats_ = {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": int(lengths.max())}
        self.missing_share_ = float(np.isnan(steps).mean())
        self.downsample_ = self.downsample or (
            1 if self.per_step else max(1, int(np.ceil(np.median(lengths) / TARGET_STEPS))))
        return self

    def raw_inputs(self, frame):
        """Raw values ``(n_samples, n_timesteps, n_channels)``, shorter examples padded with NaN."""
        return nan_padded(frame[VALUES], self.n_channels_)

    def encode(self, frame):
        """Normalised values for training (NaN kept: the model masks it)."""
        return ((self.raw_inputs(frame) - np.float32(self.mean_)) / np.sqrt(np.float32(self.variance_))).astype("float32")

    def model_inputs(self):
        return {"n_features": self.n_channels_, "downsample": self.downsample_,
                "series_length": self.length_stats_["max"]}

    def model_defaults(self):
        """Measured on the UCR/UEA sets (``benchmarks/timeseries_accuracy.py``, 3 seeds each).

        Pooling: the mean over the steps for series that were averaged down (they were long:
        GunPoint 93% against 73% with the last state), the last state for short ones
        (ItalyPowerDemand, 24 steps: 96% against 92% with the mean); per step, none.
        Dropout 0.1: 0.5 on the inputs of a recurrent layer that reads one or a few channels
        hides half the signal (GunPoint fell from 92% to 70%, ItalyPowerDemand from 95% to 79%).
        """
        averaged = not self.per_step and self.downsample_ > 1
        return {"pooling": "mean" if averaged else "last", "dropout": 0.1}

    def wrap(self, core):
        """A model from raw values ``(n_samples, n_timesteps, n_channels)`` to class probabilities."""
        values = keras.Input(shape=(None, self.n_channels_), dtype="float32", name=VALUES)
        normalise = keras.layers.Normalization(axis=-1, mean=self.mean_, variance=self.variance_, name="normalization")
        return keras.Model(values, core(normalise(values)), name=f"{core.name}_sensor")

    def serving_spec(self):
        """The exported signature's input: raw float values with a free batch and time dimension."""
        return tf.TensorSpec((None, None, self.n_channels_), tf.float32, name=VALUES)

    def summary(self):
        return {
            "task": self.task.name,
            "series_col": self.series_col,
            "time_col": self.time_col,
            "label_col": self.label_col,
            "channels": self.channels,
            "window": self.window,
            "stride": self.stride or self.window,
            "window_label": self.window_label if self.window and not self.per_step else None,
            "downsample": self.downsample_,
            "training_lengths": self.length_stats_,
            "missing_values": f"{self.missing_share_:.2%} of training values (NaN -> channel mean inside the model)",
            "normalization": {"mean": [round(m, 6) for m in self.mean_],
                              "std": [round(float(np.sqrt(v)), 6) for v in self.variance_]},
        }


def _label_cell(value, source):
    """A nested table's label: one value, or a flat array of one value per step."""
    if value is None or np.isscalar(value):
        return value
    array = np.asarray(value, dtype=object)
    if array.ndim != 1 or any(not (v is None or np.isscalar(v)) for v in array):
        raise DataError(f"{source}: a label must be one value, or a flat list of one value per step; got "
                        f"{str(value)[:40]}")
    return array


def _mostly_numeric(column):
    """A numeric column, or one where most cells are numbers (the others are reported as mistakes)."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    present = column.dropna()
    return len(present) > 0 and pd.to_numeric(present, errors="coerce").notna().mean() >= 0.5


def _channel_list(channels):
    if channels is None or isinstance(channels, list):
        return channels
    if isinstance(channels, str):
        return [c.strip() for c in channels.split(",") if c.strip()] or None
    return list(channels)


def _id_list(ids):
    ids = [str(i) for i in ids]
    more = f" and {len(ids) - MAX_IDS_LISTED} more" if len(ids) > MAX_IDS_LISTED else ""
    return ", ".join(ids[:MAX_IDS_LISTED]) + more
