"""Stock windows: causal features, aligned labels, purged chronological splits, honest baselines, export."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from seqclf.cli import main
from seqclf.data.readers import read_table
from seqclf.data.stock import StockAdapter
from seqclf.errors import ConfigError, DataError
from seqclf.models.layers import PriceFeatures

from .conftest import ROOT

GOOG = ROOT / "datasets" / "goog_daily.csv"
VEGA = ROOT / "datasets" / "vega_stocks_monthly.csv"
TINY = ("--units", "4", "--epochs", "1", "--batch-size", "32", "--verbose", "0")
OHLCV = ["open", "high", "low", "close", "volume"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def goog():
    """The real GOOG daily prices (2004-2013), as read from the file (unnamed date column)."""
    return read_table(GOOG)


@pytest.fixture(scope="module")
def goog_run(tmp_path_factory):
    """A one-epoch lstm on the last 500 GOOG days."""
    folder = tmp_path_factory.mktemp("goog")
    data = folder / "goog.csv"
    pd.read_csv(GOOG).tail(500).to_csv(data, index=False)
    out = folder / "run"
    result = invoke("fit", "--arch", "lstm", "--window", "10", data, "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return out, data


def test_labels_are_the_direction_of_the_forward_return_checked_by_hand():
    table = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=7).astype(str),
                          "close": [100.0, 101.0, 99.0, 99.0, 104.0, 103.0, 110.0]})
    one = StockAdapter(window=2).prepare(table, "t")
    # windows end on steps 1..5; the label compares that close with the next one
    assert one["date"].tolist() == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"]
    assert one["direction"].tolist() == ["down", "down", "up", "down", "up"]  # 99 -> 99 is not up
    assert [v[:, 0].tolist() for v in one["values"]][:2] == [[100.0, 101.0], [101.0, 99.0]]
    two = StockAdapter(window=3, horizon=2, threshold=0.02).prepare(table, "t")
    # ends on steps 2..4: 99 -> 104 (+5.1%) up, 99 -> 103 (+4.0%) up, 104 -> 110 (+5.8%) up
    assert two["direction"].tolist() == ["up", "up", "up"]
    flat = StockAdapter(window=2, horizon=1, threshold=0.015).prepare(table, "t")
    # 101 -> 99 (-2.0%) down, 99 -> 99 flat, 99 -> 104 up, 104 -> 103 (-1.0%) flat, 103 -> 110 up
    assert flat["direction"].tolist() == ["down", "flat", "up", "flat", "up"]
    np.testing.assert_allclose(flat["past_return"], np.log([101 / 100, 99 / 101, 99 / 99, 104 / 99, 103 / 104]))
    np.testing.assert_allclose(flat["next_return"], np.log([99 / 101, 99 / 99, 104 / 99, 103 / 104, 110 / 103]))


def test_windows_and_features_never_see_later_prices(goog):
    adapter = StockAdapter(window=20)
    before = adapter.prepare(goog, "goog")
    cut = 1000  # change every price after row 1000
    changed = goog.astype({"Volume": "float64"})
    for column in ["Open", "High", "Low", "Close", "Volume"]:
        changed.loc[cut + 1:, column] = changed.loc[cut + 1:, column] * np.linspace(0.5, 2.0, len(goog) - cut - 1)
    after = StockAdapter(window=20).prepare(changed, "goog")
    inputs_done = (before["start"] + 19 <= cut).to_numpy()
    np.testing.assert_array_equal(np.stack(before["values"][inputs_done]), np.stack(after["values"][inputs_done]))
    features = adapter._feature_layer()
    np.testing.assert_array_equal(features(adapter.raw_inputs(before[inputs_done])).numpy(),
                                  features(adapter.raw_inputs(after[inputs_done])).numpy())
    labels_done = (before["start"] + 19 + 1 <= cut).to_numpy()
    assert before["direction"][labels_done].tolist() == after["direction"][labels_done].tolist()
    assert before["direction"][~inputs_done].tolist() != after["direction"][~inputs_done].tolist()


@pytest.mark.parametrize("feature", ["returns", "range", "gap", "volume", "volatility"])
def test_each_feature_within_a_window_reads_only_steps_up_to_its_own(feature):
    rng = np.random.default_rng(0)
    prices = np.exp(rng.normal(4.0, 0.1, size=(3, 30, 5))).astype("float32")
    layer = PriceFeatures(OHLCV, [feature], volatility_steps=5)
    reference = layer(prices).numpy()
    for t in (3, 12, 28):
        later_changed = prices.copy()
        later_changed[:, t + 1:] *= 1.7
        np.testing.assert_array_equal(layer(later_changed).numpy()[:, :t + 1], reference[:, :t + 1])


def test_feature_values_match_their_definitions():
    rng = np.random.default_rng(1)
    p = np.exp(rng.normal(4.0, 0.05, size=(1, 12, 5)))
    o, h, low, c, v = (p[0, :, i] for i in range(5))
    got = PriceFeatures(OHLCV, ["returns", "range", "gap", "volume", "volatility"], volatility_steps=4)(
        p.astype("float32")).numpy()[0].astype("float64")
    returns = np.log(c[1:] / c[:-1])
    np.testing.assert_allclose(got[1:, 0], returns, atol=1e-5)
    np.testing.assert_allclose(got[:, 1], np.log(h / low), atol=1e-5)
    np.testing.assert_allclose(got[1:, 2], np.log(o[1:] / c[:-1]), atol=1e-5)
    np.testing.assert_allclose(got[1:, 3], np.log1p(v[1:]) - np.log1p(v[:-1]), atol=1e-5)
    np.testing.assert_allclose(got[4:, 4], [np.std(returns[t - 4:t]) for t in range(4, 12)], atol=1e-5)
    assert np.isnan(got[0, [0, 2, 3, 4]]).all() and np.isnan(got[:4, 4]).all()  # not enough history in the window
    assert np.isnan(PriceFeatures(["close"], ["returns"])(np.array([[[1.0], [-1.0]]], "float32")).numpy()[0, 1, 0])


def test_chronological_split_leaves_a_gap_of_window_plus_horizon(goog):
    adapter = StockAdapter(window=20, horizon=5)
    windows = adapter.prepare(goog, "goog")
    earlier, held = adapter.split(windows, 0.2, 0, "goog", "test")
    assert earlier["date"].max() < held["date"].min()
    last_price_used = earlier["start"].max() + 20 - 1 + 5
    assert last_price_used < held["start"].min()  # no price is both a training label and a test input
    assert held["start"].min() - earlier["start"].max() == 20 + 5  # window ends W + H apart, no more dropped
    assert len(held) == pytest.approx(0.2 * len(windows), abs=2)


def test_multi_ticker_splits_cut_at_one_date_and_purge_each_ticker():
    adapter = StockAdapter(window=12, horizon=1)
    windows = adapter.prepare(read_table(VEGA), "vega")
    assert sorted(windows["id"].unique()) == ["AAPL", "AMZN", "GOOG", "IBM", "MSFT"]
    earlier, held = adapter.split(windows, 0.25, 0, "vega", "test")
    assert earlier["date"].max() < held["date"].min()
    for ticker, rows in held.groupby("id"):
        mine = earlier[earlier["id"] == ticker]
        assert (mine["start"] + 12 - 1 + 1 < rows["start"].min()).all()


def test_walk_forward_folds_are_ordered_disjoint_and_purged(goog):
    adapter = StockAdapter(window=20)
    windows = adapter.prepare(goog, "goog")
    folds = adapter.walk_forward_folds(windows, 4, "goog")
    assert len(folds) == 4
    tests = [set(test["date"]) for _, test in folds]
    assert all(not (a & b) for i, a in enumerate(tests) for b in tests[i + 1:])
    for (earlier, test), (_, following) in zip(folds, folds[1:] + [(None, None)]):
        assert earlier["start"].max() + 20 - 1 + 1 < test["start"].min()
        if following is not None:
            assert test["date"].max() < following["date"].min()
    sizes = [len(earlier) for earlier, _ in folds]
    assert sizes == sorted(sizes)  # expanding windows


def test_report_scores_baselines_and_strategy_on_the_same_windows():
    table = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=8).astype(str),
                          "close": [100.0, 110.0, 99.0, 108.9, 98.01, 107.811, 97.0299, 106.73289]})
    adapter = StockAdapter(window=2)
    windows = adapter.prepare(table, "t")  # prices alternate up 10% and down 10%
    adapter.classes_, adapter.class_counts_ = ["down", "up"], {"up": 3, "down": 1}
    always_up = np.tile([[0.0, 1.0]], (len(windows), 1))
    report = adapter.report(windows, always_up)
    truth = windows["direction"].tolist()
    assert truth == ["down", "up", "down", "up", "down", "up"]
    assert report["baselines"]["majority"]["accuracy"] == pytest.approx(0.5)
    assert report["baselines"]["persistence"]["accuracy"] == 0.0  # the past direction is always wrong here
    held = np.prod([p1 / p0 for p0, p1 in zip(table["close"][1:-1], table["close"][2:])]) - 1
    assert report["strategy"]["buy_and_hold_return"] == pytest.approx(held, abs=1e-6)
    assert report["strategy"]["model_return"] == pytest.approx(held, abs=1e-6)  # always long = buy and hold
    assert report["baselines"]["persistence"]["strategy_return"] == pytest.approx(0.9 ** 3 - 1, abs=1e-6)


def test_shuffled_labels_land_near_chance_and_a_planted_signal_is_found(tmp_path):
    from seqclf import SequenceClassifier
    from seqclf.estimators import predict_proba

    goog = pd.read_csv(GOOG)
    adapter = StockAdapter(window=10)
    windows = adapter.prepare(goog, "goog")
    earlier, test = adapter.split(windows, 0.2, 0, "goog", "test")
    train, val = adapter.split(earlier, 0.15, 0, "goog", "val")
    shuffled = train.assign(direction=np.random.default_rng(0).permutation(train["direction"].to_numpy()))
    clf = SequenceClassifier(kind="stock", arch="gru", units=(16,), epochs=5, window=10)
    clf.fit_examples(adapter, shuffled, val)
    called = clf.classes_[predict_proba(clf.model_, clf.adapter_, test).argmax(axis=1)]
    accuracy = float((called == test["direction"].to_numpy()).mean())
    assert abs(accuracy - 0.5) < 0.08, accuracy
    # a control that can fail the other way: a series whose direction repeats every other day is learned
    rng = np.random.default_rng(0)
    steps = np.where(np.arange(600) % 2 == 0, 0.01, -0.01) + rng.normal(0, 0.002, 600)
    planted = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=600).astype(str),
                            "close": 100 * np.exp(np.cumsum(steps))})
    clf = SequenceClassifier(kind="stock", arch="gru", units=(16,), epochs=8, window=10).fit(planted.head(500))
    later = clf.adapter_.prepare(planted.tail(100), "planted")
    called = clf.classes_[predict_proba(clf.model_, clf.adapter_, later).argmax(axis=1)]
    assert (called == later["direction"].to_numpy()).mean() > 0.9


@pytest.mark.parametrize("change, message", [
    (lambda f: pd.concat([f, f.tail(1)]), "twice"),
    (lambda f: f.assign(Close=f["Close"].where(f.index != 50)), "missing or not a number"),
    (lambda f: f.assign(Low=f["Low"].where(f.index != 60, -1.0)), "not positive"),
    (lambda f: f.assign(Date=f["Date"].where(f.index != 70, "someday")), "not a date"),
    (lambda f: f.head(20), "need at least 21"),
    (lambda f: f.drop(columns=["Close"]), "no close or price column"),
])
def test_bad_price_files_exit_2_with_one_line(tmp_path, change, message):
    table = pd.read_csv(GOOG).rename(columns={"Unnamed: 0": "Date"}).head(200)
    path = tmp_path / "prices.csv"
    change(table).to_csv(path, index=False)
    result = invoke("fit", "--kind", "stock", path, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_unsorted_dates_are_sorted_and_a_short_ticker_is_named(tmp_path):
    table = pd.read_csv(GOOG).head(120)
    shuffled = StockAdapter(window=10).prepare(table.sample(frac=1.0, random_state=0), "x")
    ordered = StockAdapter(window=10).prepare(table, "x")
    assert shuffled.drop(columns="values").equals(ordered.drop(columns="values"))
    vega = read_table(VEGA)
    short = pd.concat([vega, pd.DataFrame({"symbol": ["NEW"] * 5, "date": vega["date"][:5], "price": 1.0})])
    with pytest.raises(DataError, match="ticker 'NEW' has 5 rows"):
        StockAdapter(window=12).prepare(short, "vega")
    with pytest.raises(ConfigError, match="needs the column"):
        StockAdapter(features="volume").prepare(vega, "vega")
    with pytest.raises(ConfigError, match="label-col does not apply"):
        StockAdapter(label_col="Close")


def test_stock_run_reports_baselines_and_exports_raw_windows(goog_run, tmp_path):
    run, data = goog_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"majority", "persistence"}
    assert {"accuracy", "macro_f1", "strategy_return"} <= set(metrics["baselines"]["majority"])
    assert metrics["in_sample_windows"] == 0
    assert {"model_return", "buy_and_hold_return"} <= set(metrics["strategy"])
    assert (run / "strategy.png").stat().st_size > 10_000
    config = json.loads((run / "config.json").read_text())
    assert config["data_summary"]["inputs"] == ["Open", "High", "Low", "Close", "Volume"]
    examples = json.loads((run / "report_examples.json").read_text())  # the report names a window by its last date
    predictions = pd.read_csv(run / "test_predictions.csv", dtype=str).set_index("date")
    assert examples and all(predictions.loc[e["id"], "label"] == e["predicted"] for e in examples)
    raw = pd.read_csv(data)[["Open", "High", "Low", "Close", "Volume"]].to_numpy("float32")
    serve = tf.saved_model.load(str(run / "export" / "goog" / "1")).signatures["serving_default"]
    answer = serve(prices=tf.constant(raw[-10:][None]))
    predicted = pd.read_csv(__import__("io").StringIO(invoke("predict", run, data).output))
    assert predicted["date"].iloc[-1] == pd.read_csv(data).iloc[-1, 0]
    assert predicted["label"].iloc[-1] == answer["label"].numpy()[0].decode()
    np.testing.assert_allclose(predicted[["prob_down", "prob_up"]].iloc[-1], answer["probabilities"].numpy()[0],
                               atol=1e-5)
    result = invoke("evaluate", run, data)
    assert result.exit_code == 0 and "persistence" in result.output


def test_walk_forward_cli_reports_every_fold_and_the_mean(tmp_path):
    out = tmp_path / "wf"
    result = invoke("fit", "--arch", "gru", "--window", "12", VEGA, "--walk-forward", "3", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    folds = json.loads((out / "metrics.json").read_text())["walk_forward"]
    assert [f["fold"] for f in folds["folds"]] == [1, 2, 3]
    assert folds["mean"]["test"]["accuracy"] == pytest.approx(np.mean([f["test"]["accuracy"] for f in folds["folds"]]),
                                                             abs=1e-6)
    assert invoke("fit", "--walk-forward", "3", ROOT / "datasets" / "movie_reviews_sample.csv", "--out",
                  tmp_path / "x", *TINY).exit_code == 2


def test_stock_model_serves_raw_windows_over_rest(goog_run):
    from .test_serving import Server

    run, data = goog_run
    raw = pd.read_csv(data)[["Open", "High", "Low", "Close", "Volume"]].to_numpy("float32")
    server = Server(run, grpc=True)
    try:
        windows = np.stack([raw[-10:], raw[-11:-1]])
        server.assert_grpc_equals_rest("goog", windows.tolist(), {"prices": windows})
        answer = server.post("/v1/models/goog:predict", {"instances": [raw[-10:].tolist(), raw[-11:-1].tolist()]})
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]][0] in ("up", "down")
        wrong = server.post("/v1/models/goog:predict", {"instances": [raw[-12:].tolist()]})
        assert wrong.status_code == 400 and "shape" in wrong.json()["error"]
    finally:
        server.stop()


def test_a_default_feature_that_never_varies_is_left_out_and_a_chosen_one_refused(goog):
    """Some price files set each open to the previous close: the default `gap` feature is then always 0."""
    table = goog.tail(300).copy()
    table["Open"] = table["Close"].shift(1).fillna(table["Close"].iloc[0])
    adapter = StockAdapter(window=10)
    windows = adapter.prepare(table, "opens")
    heard = []
    handler = logging.Handler()
    handler.emit = lambda record: heard.append(record.getMessage())
    logging.getLogger("seqclf.data.stock").addHandler(handler)
    try:
        adapter.fit(windows, "opens")
    finally:
        logging.getLogger("seqclf.data.stock").removeHandler(handler)
    assert "gap" not in adapter.features_ and len(adapter.mean_) == len(adapter.features_) >= 3
    assert any("feature(s) gap do not vary in the training data; left out" in message for message in heard)
    assert adapter.encode(windows).shape[-1] == len(adapter.features_)
    chosen = StockAdapter(window=10, features="returns,gap")
    with pytest.raises(DataError, match="feature 'gap' does not vary in the training data"):
        chosen.fit(chosen.prepare(table, "opens"), "opens")
