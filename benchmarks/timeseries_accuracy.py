"""Accuracy and fit time on UCR/UEA archive sets (published split): seqclf's designs beside MiniRocket and 1-NN DTW.

Data: ``../shared/data/timeseries/<name>/<name>_TRAIN.ts`` and ``_TEST.ts`` (BasicMotions,
GunPoint, ItalyPowerDemand, ArrowHead, PickupGestureWiimoteZ). Each seqclf design is one
``seqclf fit <name>_TRAIN.ts --test <name>_TEST.ts --arch DESIGN`` with every other setting at
its default (a validation share of the training cases is split off for early stopping),
repeated over ``--seeds`` seeds. In the same script, on the same files: aeon's
``MiniRocketClassifier(random_state=seed)`` and ``KNeighborsTimeSeriesClassifier(distance="dtw")``
(one neighbour, full window; deterministic, so run once). Both get the series as aeon reads
them, ``(n_channels, n_timepoints)`` per case. The variable-length PickupGestureWiimoteZ goes to
1-NN DTW as a list of cases of their own lengths (it accepts them); MiniRocket does not, and gets
the archive's own equal-length version (``_eq_`` files: each case padded to 361 steps, with
low-amplitude noise after its end); seqclf reads the variable-length files (padding masked).
``fit_seconds`` is the wall time of training and predicting the test set (seqclf: the whole
``seqclf fit``, reading, the validation split, training, testing and the export; 1-NN DTW's work
is all in predicting; MiniRocket's first set includes numba's compilation).

Run from the project root (needs the ``benchmark`` extra, which brings aeon)::

    python benchmarks/timeseries_accuracy.py                       # defaults (lstm+fcn), bigru, lstm+mfcn, peers; 3 seeds
    python benchmarks/timeseries_accuracy.py --seeds 1 --sets GunPoint --designs lstm+fcn minirocket

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

import numpy as np
import pandas as pd

from seqclf.data.readers import read_table
from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT.parent / "shared" / "data" / "timeseries"
RESULTS = ROOT / "benchmarks" / "results" / "timeseries_accuracy.json"
SETS = ("BasicMotions", "GunPoint", "ItalyPowerDemand", "ArrowHead", "PickupGestureWiimoteZ")
#: name -> published deep-learning references (../shared/data/README.md)
PUBLISHED = {"GunPoint": "FCN 100, ResNet 99.1", "ItalyPowerDemand": "FCN 96.1, ResNet 96.3",
             "ArrowHead": "FCN 84.3, LSTM-FCN 89.7", "PickupGestureWiimoteZ": "MLP 60.4, FCN 74.4, ResNet 70.4"}
PEERS = ("minirocket", "dtw")
DEFAULT = "defaults"  # seqclf fit without --arch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--designs", nargs="+", default=[DEFAULT, "bigru", "lstm+mfcn", *PEERS],
                        help=f"--arch specs, {DEFAULT!r} (no --arch) and the peers {', '.join(PEERS)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="Override a FitSettings field or adapter option of the seqclf designs (repeatable).")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not ARCHIVE.exists():
        sys.exit(f"UCR/UEA sets not found at {ARCHIVE}")
    settings, options = _overrides(args.overrides)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.sets:
            for design in args.designs:
                for seed in range(1 if design == "dtw" else args.seeds):
                    fit = _peer if design in PEERS else _seqclf
                    rows.append({"set": name, "design": design, "seed": seed,
                                 **fit(name, design, seed, settings, options, Path(scratch))})
                    print(rows[-1], flush=True)
    runs = pd.DataFrame(rows)
    table = runs.groupby(["set", "design"], sort=False).agg(
        mean=("test_accuracy", "mean"), sd=("test_accuracy", "std"), seeds=("seed", "count"),
        fit_seconds=("fit_seconds", "mean")).reset_index()
    wide = table.pivot(index="set", columns="design", values="mean").reindex(index=args.sets, columns=args.designs)
    wide.loc["mean"] = wide.mean()
    print()
    print(table.round(2).to_string(index=False))
    print()
    print(wide.round(2).to_string())
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps({
        "data": "UCR/UEA archive, published train/test split", "designs": args.designs,
        "settings": {"defaults": "seqclf fit", "overrides": args.overrides}, "seeds": args.seeds,
        "published_deep": PUBLISHED, "summary": json.loads(table.round(2).to_json(orient="records")),
        "mean_over_sets": json.loads(wide.loc["mean"].round(2).to_json()), "runs": rows,
    }, indent=2) + "\n")
    print(f"written {args.output}")


def _seqclf(name, design, seed, settings, options, scratch):
    started = time.perf_counter()
    arch = None if design == DEFAULT else design
    run = fit_run(DataSettings(str(ARCHIVE / name / f"{name}_TRAIN.ts"), kind="sensor",
                               test=str(ARCHIVE / name / f"{name}_TEST.ts"), options=options),
                  FitSettings(arch=arch, seed=seed, **settings), out=scratch / f"{name}-{design}-{seed}", verbose=0)
    metrics = json.loads((run / "metrics.json").read_text())
    return {"test_accuracy": round(100 * metrics["test"]["accuracy"], 2), "n_test": metrics["test"]["n"],
            "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
            "fit_seconds": round(time.perf_counter() - started, 1)}


def _peer(name, design, seed, settings, options, scratch):
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    equal = design == "minirocket" and (ARCHIVE / name / f"{name}_eq_TRAIN.ts").exists()  # it needs equal lengths
    (X, y), (X_test, y_test) = (_cases(ARCHIVE / name / f"{name}{'_eq' if equal else ''}_{part}.ts")
                                for part in ("TRAIN", "TEST"))
    model = (MiniRocketClassifier(random_state=seed) if design == "minirocket"
             else KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw"))
    started = time.perf_counter()
    model.fit(X, y)
    accuracy = float(np.mean(model.predict(X_test) == y_test))
    return {"test_accuracy": round(100 * accuracy, 2), "n_test": len(y_test),
            "fit_seconds": round(time.perf_counter() - started, 1)}


def _cases(path):
    """A ``.ts`` file as aeon takes it: a 3-D array ``(n, channels, T)``, or a list of ``(channels, T_i)`` arrays
    when the cases differ in length; and the labels."""
    frame = read_table(path)
    cases = [np.asarray(values, "float64").T for values in frame["values"]]
    lengths = {case.shape[1] for case in cases}
    return (np.stack(cases) if len(lengths) == 1 else cases), frame["label"].astype(str).to_numpy()


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
