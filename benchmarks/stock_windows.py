"""Stock windows: the default model beside the majority and persistence baselines, on the same test windows.

Data: ``../shared/data/stocks/GOOG.csv`` (daily OHLCV, 2004-2013) and ``vega_stocks.csv``
(monthly closes of five tickers, 2000-2010). For each file and horizon (1 and 5 steps):

- ``seqclf fit`` with the defaults (window 20 days, or 12 months for the monthly file), over
  ``--seeds`` seeds: its test accuracy, macro F1 and long/flat strategy return beside the
  baselines scored on the same windows, and a one-sided binomial p-value for "the model is
  right more often than the majority baseline";
- a control: the same model trained on the same windows with the training labels shuffled
  (it must land near chance; a model far above the baselines, or a shuffled control above
  chance, would point to a leak);
- ``--walk-forward 5`` (2 for the monthly file, whose first block is otherwise too short to
  split off a purged validation share at horizon 5): the mean over the folds.

No accuracy goal: next-step direction is close to a coin flip (``../shared/data/README.md``).

Run from the project root::

    python benchmarks/stock_windows.py              # about 8 minutes on 2 cores
    python benchmarks/stock_windows.py --seeds 1 --horizons 1

Prints a table and writes ``benchmarks/results/stock_windows.json``.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from seqclf import SequenceClassifier
from seqclf.data.readers import read_table
from seqclf.data.stock import StockAdapter
from seqclf.estimators import predict_proba
from seqclf.evaluation import classification_metrics
from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
STOCKS = ROOT.parent / "shared" / "data" / "stocks"
RESULTS = ROOT / "benchmarks" / "results" / "stock_windows.json"
#: file -> (window, walk-forward folds)
DATA = {"GOOG.csv": (20, 5), "vega_stocks.csv": (12, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--arch", default=FitSettings.arch)
    args = parser.parse_args()
    if not STOCKS.exists():
        sys.exit(f"stock prices not found at {STOCKS}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, (window, folds) in DATA.items():
            for horizon in args.horizons:
                options = {"window": window, "horizon": horizon}
                rows += _split_runs(name, options, args, Path(scratch))
                rows.append(_shuffled_control(name, options, args.arch))
                rows += _walk_forward(name, options, folds, args.arch, Path(scratch))
                for row in rows[-(args.seeds + 4):]:
                    print(row, flush=True)
    table = pd.DataFrame(rows)
    shown = table.groupby(["data", "horizon", "method"], sort=False).agg(
        accuracy=("accuracy", "mean"), sd=("accuracy", "std"), macro_f1=("macro_f1", "mean"),
        strategy_return=("strategy_return", "mean"), buy_and_hold=("buy_and_hold", "first"),
        p_above_majority=("p_above_majority", "mean"), n_test=("n_test", "first")).reset_index()
    print()
    print(shown.round(4).to_string(index=False))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "../shared/data/stocks (GOOG daily 2004-2013, vega_stocks monthly 2000-2010)",
        "arch": args.arch, "seeds": args.seeds, "settings": "seqclf fit defaults; window 20 (daily) or 12 (monthly)",
        "summary": json.loads(shown.round(4).to_json(orient="records")), "runs": rows,
    }, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


def _split_runs(name, options, args, scratch):
    """The model over seeds, and the two baselines once (they do not depend on the seed)."""
    rows = []
    for seed in range(args.seeds):
        run = fit_run(DataSettings(str(STOCKS / name), kind="stock", options=options),
                      FitSettings(arch=args.arch, seed=seed), out=scratch / f"{name}-{options['horizon']}-{seed}",
                      verbose=0)
        metrics = json.loads((run / "metrics.json").read_text())
        test, strategy = metrics["test"], metrics["strategy"]
        majority = metrics["baselines"]["majority"]["accuracy"]
        common = {"data": name, "horizon": options["horizon"], "n_test": test["n"],
                  "buy_and_hold": strategy["buy_and_hold_return"], "test_period": "..".join(strategy["period"])}
        rows.append({**common, "method": "model", "seed": seed, "accuracy": test["accuracy"],
                     "macro_f1": test["macro_f1"], "strategy_return": strategy["model_return"],
                     "p_above_majority": _p_above(test["accuracy"], majority, test["n"]),
                     "epochs_run": metrics["epochs_run"], "train_seconds": metrics["train_seconds"]})
        if seed == 0:
            rows += [{**common, "method": baseline, **scores, "p_above_majority": None if baseline == "majority" else
                      _p_above(scores["accuracy"], majority, test["n"])} for baseline, scores in metrics["baselines"].items()]
    return rows


def _shuffled_control(name, options, arch):
    """The default model trained on the same training windows with their labels shuffled."""
    adapter = StockAdapter(**options)
    windows = adapter.prepare(read_table(STOCKS / name), name)
    earlier, test = adapter.split(windows, 0.1, 0, name, "test")
    train, val = adapter.split(earlier, 0.1 / 0.9, 0, name, "val")
    shuffled = train.assign(direction=np.random.default_rng(0).permutation(train["direction"].to_numpy()))
    clf = SequenceClassifier(kind="stock", arch=arch, **options).fit_examples(adapter, shuffled, val)
    probabilities = predict_proba(clf.model_, clf.adapter_, test)
    scores = classification_metrics(clf.adapter_.targets(test, name), probabilities.argmax(axis=1), clf.adapter_.classes_)
    report = clf.adapter_.report(test, probabilities)
    majority = report["baselines"]["majority"]["accuracy"]
    return {"data": name, "horizon": options["horizon"], "method": "model, training labels shuffled",
            "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
            "strategy_return": report["strategy"]["model_return"],
            "buy_and_hold": report["strategy"]["buy_and_hold_return"], "n_test": len(test),
            "p_above_majority": _p_above(scores["accuracy"], majority, len(test))}


def _walk_forward(name, options, folds, arch, scratch):
    """Mean over ``folds`` expanding-window folds: the model and both baselines."""
    run = fit_run(DataSettings(str(STOCKS / name), kind="stock", walk_forward=folds, options=options),
                  FitSettings(arch=arch), out=scratch / f"{name}-{options['horizon']}-wf", verbose=0)
    mean = json.loads((run / "metrics.json").read_text())["walk_forward"]["mean"]
    common = {"data": name, "horizon": options["horizon"], "buy_and_hold": mean["strategy"]["buy_and_hold_return"],
              "n_test": f"{folds} folds", "p_above_majority": None}
    rows = [{**common, "method": f"walk-forward {folds}: model", "accuracy": mean["test"]["accuracy"],
             "macro_f1": mean["test"]["macro_f1"], "strategy_return": mean["strategy"]["model_return"]}]
    rows += [{**common, "method": f"walk-forward {folds}: {baseline}", **scores}
             for baseline, scores in mean["baselines"].items()]
    return rows


def _p_above(accuracy, rate, n):
    """One-sided binomial p-value of ``accuracy`` on ``n`` windows if the true hit rate were ``rate``."""
    return round(float(binomtest(int(round(accuracy * n)), n, rate, alternative="greater").pvalue), 4)


if __name__ == "__main__":
    main()
