"""The stock adapter: price tables into windows and up/down labels, with nothing from the future.

A price table has a date column and prices: ``Open, High, Low, Close, Volume`` (any case;
``Adj Close`` is used for returns when present), or only a close or price column; a
``Ticker``/``symbol`` column holds several instruments in one long table. Each instrument is
sorted by date and cut into *windows*: the window ending at step t holds the raw prices of the
``window`` steps up to and including t, and its label is the direction of the forward return
log(p_{t+H} / p_t) over ``horizon`` H steps: ``up`` if it exceeds ``threshold``, ``down`` if it
is below minus ``threshold``, else ``flat`` (with the default threshold 0 there is no ``flat``
and ``down`` means "not up"). Windows never cross instruments.

The model takes the raw prices: the features (:class:`~seqclf.models.layers.PriceFeatures`:
log returns, high-low range, opening gap, volume change, rolling volatility) are computed
inside it from the window alone, then scaled with statistics of the training split. So a
window's input never sees a price after its last step, and the export takes a raw price
window ``(batch, window, n_columns)`` in the column order of ``inputs`` in ``config.json``.

Splits are chronological (:meth:`StockAdapter.split`): the held-out part is the latest share
of window end dates, and training windows whose prices (inputs or label) reach within
``window + horizon`` steps of it are dropped, so no price is used on both sides.
"""

import logging

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..errors import ConfigError, DataError
from ..evaluation import plot_growth
from ..models.layers import PRICE_FEATURES, PriceFeatures
from . import stock_report, time_splits
from .adapters import Adapter, register_adapter
from .columns import find_column, require_column

log = logging.getLogger(__name__)

DATE_NAMES = ("date", "datetime", "timestamp", "time", "unnamed: 0")  # the last: pandas' unnamed index column
TICKER_NAMES = ("ticker", "symbol", "instrument")
PRICE_NAMES = {  # role -> accepted column names (case-insensitive), in the order the model reads them
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "adj_close": ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close"),
    "volume": ("volume",),
    "price": ("price",),
}
FEATURE_NEEDS = {"returns": (), "range": ("high", "low"), "gap": ("open", "close"), "volume": ("volume",),
                 "volatility": ()}
LABEL = "direction"
DEFAULT_WINDOW = 20
VOLATILITY_STEPS = 10
MAX_LISTED = 5


@register_adapter
class StockAdapter(Adapter):
    """Price windows with the direction of the forward return as the label (many-to-one).

    Examples
    --------
    >>> table = pd.DataFrame({"Date": pd.date_range("2024-01-01", periods=6).astype(str),
    ...                       "Close": [10.0, 11.0, 10.5, 10.5, 12.0, 11.0]})
    >>> windows = StockAdapter(window=3).prepare(table, "example")
    >>> windows[["date", "direction"]].values.tolist()
    [['2024-01-03', 'down'], ['2024-01-04', 'up'], ['2024-01-05', 'down']]
    >>> windows["values"][0][:, 0].tolist()  # the window ending 2024-01-03: its closes up to that day
    [10.0, 11.0, 10.5]
    """

    kind = "stock"
    description = "daily prices (date, OHLCV; one or many tickers) cut into windows with up/down labels"
    def __init__(self, label_col=None, task=None, inputs=None, **options):
        super().__init__(LABEL, task, **options)
        if label_col not in (None, LABEL):
            raise ConfigError(f"--label-col does not apply to stock data: the labels come from the prices "
                              f"(--horizon, --threshold). Got {label_col!r}.")
        self.features = _feature_list(self.features)
        self.window = DEFAULT_WINDOW if self.window is None else self.window
        self.inputs = inputs
        for name in ("window", "horizon"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < (2 if name == "window" else 1):
                raise ConfigError(f"The '{name}' parameter must be an integer >= {2 if name == 'window' else 1}. "
                                  f"Got {value!r} instead.")
        if not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold < 1.0:
            raise ConfigError(f"The 'threshold' parameter must be a number in [0, 1). Got {self.threshold!r} instead.")

    def get_config(self):
        """The settings, with the price columns and features as the fitted model reads them."""
        config = super().get_config()
        fixed = {"inputs": self.inputs_, "features": self.features_} if hasattr(self, "inputs_") else {}
        return {**config, "inputs": self.inputs, **fixed}

    @classmethod
    def detect(cls, frame):
        """Price data: a date column and a close, adjusted close or price column."""
        prices = _price_columns(frame)
        return find_column(frame, None, DATE_NAMES, "date", "", "") is not None and bool(
            {"close", "adj_close", "price"} & set(prices))

    # --- from price tables to windows ------------------------------------------------------------

    def prepare(self, frame, source, labeled=True):
        """Check the prices and return one row per window: ``id``, ``start``, ``date``, ``values``, label, returns."""
        self.label_col = LABEL  # made here from the prices, never read from the table
        self.date_col = require_column(frame, self.date_col, DATE_NAMES, "date", "--date-col", source)
        self.ticker_col = find_column(frame, self.ticker_col, TICKER_NAMES, "ticker", "--ticker-col", source)
        prices = _price_columns(frame)
        if not {"close", "adj_close", "price"} & set(prices):
            raise DataError(f"{source} has no close or price column (its columns: {', '.join(frame.columns)}); "
                            f"stock data needs Close (and optionally Open, High, Low, Adj Close, Volume) or Price")
        if self.inputs:  # a fitted model's columns: exactly these, in this order
            missing = [role for role in self.inputs if role not in prices]
            if missing:
                raise DataError(f"{source} lacks the price column(s) the model reads: {', '.join(missing)} "
                                f"(its columns: {', '.join(frame.columns)})")
        self.inputs_ = list(self.inputs or [role for role in PRICE_NAMES if role in prices])
        self.input_columns_ = [prices[role] for role in self.inputs_]
        self.features_ = self._resolve_features(prices)
        table = self._clean(frame, source)
        rows = []
        for ticker, group in table.groupby("id", sort=False):
            rows.append(self._windows_of(ticker, group, source, labeled))
        return pd.concat(rows, ignore_index=True)

    def _resolve_features(self, prices):
        if self.features is None:
            short = {"volatility"} if self.window <= self.volatility_steps else set()
            return [name for name, needs in FEATURE_NEEDS.items() if set(needs) <= set(prices) and name not in short]
        for name in self.features:
            missing = [role for role in FEATURE_NEEDS[name] if role not in prices]
            if missing:
                raise ConfigError(f"feature {name!r} needs the column(s) {', '.join(missing)}, which the data lacks; "
                                  f"choose --features from those it allows")
        return list(self.features)

    def _clean(self, frame, source):
        """Dates parsed, prices checked, rows sorted by instrument and date."""
        dates = pd.to_datetime(frame[self.date_col], errors="coerce", format="mixed")
        bad = dates.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(f"{source} has a date that is missing or not a date, {frame[self.date_col].iloc[row]!r} "
                            f"at data row {row + 1} (column {self.date_col!r})")
        table = pd.DataFrame({"id": frame[self.ticker_col].astype(str) if self.ticker_col else "all", "date": dates})
        for role, column in zip(self.inputs_, self.input_columns_):
            numbers = pd.to_numeric(frame[column], errors="coerce")
            problem = numbers.isna() | (numbers < 0 if role == "volume" else numbers <= 0)
            if problem.any():
                row = int(problem.to_numpy().nonzero()[0][0])
                what = "missing or not a number" if pd.isna(numbers.iloc[row]) else "negative" if role == "volume" \
                    else "not positive"
                raise DataError(f"{source} has a {column} value that is {what} ({frame[column].iloc[row]!r}) on "
                                f"{self._where(table, row)}; prices must be positive numbers: fill or remove that row")
            table[role] = numbers.to_numpy("float64")
        duplicated = table.duplicated(["id", "date"])
        if duplicated.any():
            raise DataError(f"{source} has the date {self._where(table, int(duplicated.to_numpy().nonzero()[0][0]))} "
                            f"twice; each instrument needs one row per date")
        if not table.groupby("id", sort=False)["date"].is_monotonic_increasing.all():
            log.info("%s: rows sorted by date", source)
        ordered = table.sort_values(["id", "date"], kind="stable")
        return ordered.reset_index(drop=True)

    def _where(self, table, row):
        """A row of the table, for error messages: its date (and ticker)."""
        ticker = f" for ticker {table['id'].iloc[row]!r}" if self.ticker_col else ""
        return f"{table['date'].iloc[row]:%Y-%m-%d}{ticker} (data row {row + 1})"

    def _windows_of(self, ticker, group, source, labeled):
        needed = self.window + (self.horizon if labeled else 0)
        if len(group) < needed:
            name = f"ticker {ticker!r} has" if self.ticker_col else f"{source} has"
            raise DataError(f"{name} {len(group)} rows of prices; a window of {self.window} steps"
                            f"{f' and a horizon of {self.horizon}' if labeled else ''} need at least {needed} "
                            f"(pass a smaller --window{' or --horizon' if labeled else ''}, or drop that ticker)")
        raw = group[self.inputs_].to_numpy("float64")
        log_price = np.log(group[_return_price(self.inputs_)].to_numpy("float64"))
        ends = np.arange(self.window - 1, len(group) - (self.horizon if labeled else 0))
        windows = np.lib.stride_tricks.sliding_window_view(raw.astype("float32"), self.window, axis=0)
        rows = pd.DataFrame({
            "id": ticker,
            "start": ends - self.window + 1,
            "date": group["date"].to_numpy()[ends],
            "values": list(windows[ends - self.window + 1].transpose(0, 2, 1)),
            "past_return": _shifted_difference(log_price, ends, -self.horizon),
            "next_return": _shifted_difference(log_price, ends, 1),
        })
        if labeled:
            rows["forward_return"] = _shifted_difference(log_price, ends, self.horizon)
            rows[LABEL] = self.direction(rows["forward_return"].to_numpy())
        rows["date"] = _date_strings(rows["date"])
        return rows

    def direction(self, log_returns):
        """``up``, ``down`` (or ``flat`` within ``threshold``) for each log return (NaN: ``None``)."""
        simple = np.expm1(log_returns)
        labels = np.where(simple > self.threshold, "up", "down").astype(object)
        if self.threshold > 0:
            labels[np.abs(simple) <= self.threshold] = "flat"
        labels[np.isnan(simple)] = None
        return labels

    # --- chronological splits (seqclf/data/time_splits.py) ----------------------------------------

    @property
    def gap(self):
        """Steps from a window's first price to the last price its label reads (``window - 1 + horizon``)."""
        return self.window - 1 + self.horizon

    def split(self, frame, size, seed, source, part):
        """``(earlier, held_out)``: the latest ``size`` share of window end dates held out, purged
        (:func:`~seqclf.data.time_splits.chronological_split`); ``seed`` is unused: the split is by time."""
        return time_splits.chronological_split(frame, size, self.gap, source, part)

    def walk_forward_folds(self, frame, folds, source):
        """``folds`` expanding-window ``(earlier, test)`` pairs in time order (:func:`~seqclf.data.time_splits.walk_forward`)."""
        return time_splits.walk_forward(frame, folds, self.gap, source)

    # --- learning and the model ------------------------------------------------------------------

    def fit(self, train, source):
        """Learn the classes, the training class counts (majority baseline) and the feature scaling."""
        self.fit_labels(train, source)
        self.class_counts_ = train[LABEL].value_counts().to_dict()
        features = self._features(train)
        empty = np.isnan(features).all(axis=(0, 1))
        if empty.any():
            raise ConfigError(f"feature {self.features_[int(empty.argmax())]!r} needs more history than a window of "
                              f"{self.window} steps holds; pass a longer --window or leave it out of --features")
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(features, axis=(0, 1))
            variance = np.nanvar(features, axis=(0, 1))
        constant = ~(variance > 1e-12)
        if constant.any() and self.features is not None:  # chosen by the user: say so
            name = self.features_[int(constant.argmax())]
            raise DataError(f"{source}: feature {name!r} does not vary in the training data; leave it out (--features "
                            f"{','.join(f for f in self.features_ if f != name)})")
        if constant.any():  # a default feature: drop it
            dropped = [f for f, c in zip(self.features_, constant) if c]
            if constant.all():
                raise DataError(f"{source}: none of the features ({', '.join(dropped)}) varies in the training data")
            log.warning("%s: feature(s) %s do not vary in the training data; left out (choose --features to say "
                        "which to use)", source, ", ".join(dropped))
            self.features_ = [f for f, c in zip(self.features_, constant) if not c]
            mean, variance = mean[~constant], variance[~constant]
        self.mean_, self.variance_ = mean.astype("float64").tolist(), variance.astype("float64").tolist()
        self.periods_ = {"train": [train["date"].min(), train["date"].max()]}
        return self

    def restore(self, summary):
        super().restore(summary)
        self.periods_ = {"train": summary["train_period"]}
        return self

    @property
    def volatility_steps(self):
        """Returns per volatility value: 10, or half the window when that is shorter."""
        return min(VOLATILITY_STEPS, max(2, self.window // 2))

    def _feature_layer(self):
        return PriceFeatures(self.inputs_, self.features_, self.volatility_steps, name="price_features")

    def _features(self, frame):
        return keras.ops.convert_to_numpy(self._feature_layer()(self.raw_inputs(frame)))

    def raw_inputs(self, frame):
        """Raw price windows ``(n_windows, window, len(inputs))``."""
        return np.stack(frame["values"].to_numpy()).astype("float32") if len(frame) else np.zeros(
            (0, self.window, len(self.inputs_)), "float32")

    def encode(self, frame):
        """Scaled features for training (NaN where a feature needs steps before the window: masked by the model)."""
        return ((self._features(frame) - np.float32(self.mean_)) / np.sqrt(np.float32(self.variance_))).astype("float32")

    def model_inputs(self):
        return {"n_features": len(self.features_)}

    def model_defaults(self):
        """Last state, and dropout 0.1 as for other series of few channels (see the sensor adapter)."""
        return {"pooling": "last", "dropout": 0.1}

    def wrap(self, core):
        """A model from raw price windows to class probabilities: features, scaling, then ``core``."""
        prices = keras.Input(shape=(self.window, len(self.inputs_)), dtype="float32", name="prices")
        features = self._feature_layer()(prices)
        scaled = keras.layers.Normalization(axis=-1, mean=self.mean_, variance=self.variance_, name="normalization")(features)
        return keras.Model(prices, core(scaled), name=f"{core.name}_stock")

    def serving_spec(self):
        """Raw prices, ``(batch, window, len(inputs))`` in the order of ``inputs``."""
        return tf.TensorSpec((None, self.window, len(self.inputs_)), tf.float32, name="prices")

    def index(self, frame):
        """Rows of prediction tables: the window's last date (and its ticker)."""
        columns = (["id"] if self.ticker_col else []) + ["date"]
        return frame[columns].rename(columns={"id": "ticker"}).reset_index(drop=True)

    def summary(self):
        return {
            "date_col": self.date_col,
            "ticker_col": self.ticker_col,
            "inputs": self.input_columns_,
            "features": self.features_,
            "window": self.window,
            "horizon": self.horizon,
            "label_rule": f"up if the return from a window's last close to {self.horizon} step(s) later is above "
                          f"{self.threshold:.2%}" + (f", down below -{self.threshold:.2%}, else flat" if self.threshold
                                                     else ", else down"),
            "train_period": self.periods_["train"],
            "normalization": {"mean": [round(m, 6) for m in self.mean_],
                              "std": [round(float(np.sqrt(v)), 6) for v in self.variance_]},
        }

    # --- the honest report (seqclf/data/stock_report.py) ------------------------------------------

    def report(self, frame, probabilities):
        """Baselines and a long/flat strategy on the same windows as the model (:func:`stock_report.baselines`)."""
        return stock_report.baselines(self, frame, probabilities)

    @classmethod
    def report_lines(cls, metrics):
        return stock_report.lines(metrics)

    def write_plots(self, directory, frame, probabilities):
        """``strategy.png``: growth of 1 over the test period for buy and hold, the model and persistence."""
        plot_growth(stock_report.strategy_curves(self, frame, probabilities), directory / "strategy.png",
                    title="test period: buy and hold against long/flat on 'up' calls (mean over instruments)")

    def period(self, frame):
        return frame["date"].min(), frame["date"].max()


def _price_columns(frame):
    """``{role: column}`` for the price columns ``frame`` has."""
    by_lower = {str(column).lower().strip(): column for column in frame.columns}
    return {role: by_lower[name] for role, names in PRICE_NAMES.items() for name in names if name in by_lower}


def _return_price(inputs):
    return next(role for role in ("adj_close", "close", "price") if role in inputs)


def _shifted_difference(log_price, ends, shift):
    """The log return between steps ``ends`` and ``ends + shift`` (in time order); NaN past either end."""
    other = ends + shift
    inside = (other >= 0) & (other < len(log_price))
    result = np.full(len(ends), np.nan)
    later, earlier = (other, ends) if shift > 0 else (ends, other)
    result[inside] = log_price[later[inside]] - log_price[earlier[inside]]
    return result


def _date_strings(dates):
    """ISO dates, with the time only where some date has one."""
    dates = pd.to_datetime(dates)
    with_time = (dates != dates.dt.normalize()).any()
    return dates.dt.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d").astype(str)


def _feature_list(features):
    if features is None:
        return None
    names = [f.strip() for f in features.split(",")] if isinstance(features, str) else list(features)
    unknown = [n for n in names if n not in PRICE_FEATURES]
    if unknown or not names:
        raise ConfigError(f"The 'features' parameter takes names from {', '.join(PRICE_FEATURES)}. "
                          f"Got {features!r} instead.")
    return names
