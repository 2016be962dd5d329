"""Accuracy of the default sensor classifier on UCR/UEA archive sets, with their published split.

Data: ``../shared/data/timeseries/<name>/<name>_TRAIN.ts`` and ``_TEST.ts`` (BasicMotions,
GunPoint, ItalyPowerDemand, ArrowHead, PickupGestureWiimoteZ). Each set is one
``seqclf fit <name>_TRAIN.ts --test <name>_TEST.ts`` with the default settings (a validation
share of the training cases is split off for early stopping), repeated over ``--seeds`` seeds.
The goal of each set is the archive's 1-NN score (Euclidean or DTW, whichever is named in
``../shared/data/README.md``): a learning method should not lose to nearest neighbour.

Run from the project root::

    python benchmarks/timeseries_accuracy.py                  # 3 seeds, about 10 minutes on 2 cores
    python benchmarks/timeseries_accuracy.py --seeds 1 --sets GunPoint

Prints a table and writes ``benchmarks/results/timeseries_accuracy.json``.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd

from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT.parent / "shared" / "data" / "timeseries"
RESULTS = ROOT / "benchmarks" / "results" / "timeseries_accuracy.json"
#: name -> (goal accuracy %, what the goal is, published deep-learning reference) from ../shared/data/README.md
PUBLISHED = {
    "BasicMotions": (97.5, "1-NN DTW_D", None),
    "GunPoint": (91.3, "1-NN Euclidean", "FCN 100, ResNet 99.1"),
    "ItalyPowerDemand": (95.5, "1-NN Euclidean", "FCN 96.1, ResNet 96.3"),
    "ArrowHead": (80.0, "1-NN Euclidean", "FCN 84.3, LSTM-FCN 89.7"),
    "PickupGestureWiimoteZ": (None, "reported only", "MLP 60.4, FCN 74.4, ResNet 70.4"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(PUBLISHED), choices=list(PUBLISHED))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arch", default=FitSettings.arch)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="Override a FitSettings field or adapter option, e.g. --set epochs=100 (repeatable).")
    args = parser.parse_args()
    if not ARCHIVE.exists():
        sys.exit(f"UCR/UEA sets not found at {ARCHIVE}")
    settings, options = _overrides(args.overrides)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.sets:
            for seed in range(args.seeds):
                started = time.perf_counter()
                run = fit_run(
                    DataSettings(str(ARCHIVE / name / f"{name}_TRAIN.ts"), kind="sensor",
                                 test=str(ARCHIVE / name / f"{name}_TEST.ts"), options=options),
                    FitSettings(arch=args.arch, seed=seed, **settings), out=Path(scratch) / f"{name}-{seed}", verbose=0)
                metrics = json.loads((run / "metrics.json").read_text())
                rows.append({
                    "set": name, "seed": seed, "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                    "n_test": metrics["test"]["n"], "epochs_run": metrics["epochs_run"],
                    "best_epoch": metrics["best_epoch"], "wall_seconds": round(time.perf_counter() - started, 1),
                })
                print(rows[-1], flush=True)
    runs = pd.DataFrame(rows)
    table = runs.groupby("set", sort=False).agg(
        mean=("test_accuracy", "mean"), sd=("test_accuracy", "std"), worst=("test_accuracy", "min"),
        n_test=("n_test", "first"), seconds=("wall_seconds", "mean")).reset_index()
    table["goal"] = table["set"].map(lambda s: PUBLISHED[s][0])
    table["goal_is"] = table["set"].map(lambda s: PUBLISHED[s][1])
    table["met"] = [("yes" if m >= g else "no") if pd.notna(g) else "-" for m, g in zip(table["mean"], table["goal"])]
    table["published_deep"] = table["set"].map(lambda s: PUBLISHED[s][2] or "")
    print()
    print(table.round(2).to_string(index=False))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "UCR/UEA archive, published train/test split", "arch": args.arch,
        "settings": {"defaults": "seqclf fit", "overrides": args.overrides}, "seeds": args.seeds,
        "summary": json.loads(table.round(2).to_json(orient="records")), "runs": rows,
    }, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


def _overrides(pairs):
    """``name=value`` pairs split into FitSettings fields and adapter options (numbers parsed)."""
    settings, options = {}, {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        value = json.loads(value) if value.replace(".", "", 1).replace("-", "", 1).isdigit() else value
        if name == "units":
            value = tuple(int(u) for u in str(value).split(","))
        (settings if name in FitSettings.__dataclass_fields__ else options)[name] = value
    return settings, options


if __name__ == "__main__":
    main()
