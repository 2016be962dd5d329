"""``seqclf tune`` against the defaults: movie reviews (MR) and one UCR set, on the same splits.

For each data set: one ``seqclf fit`` with every setting at its default, then one ``seqclf tune``
(Hyperband, the default space) given ``--budget`` minutes for the search, whose best trial is
refitted with the full budget. Both read the same training file and test file; the tune's trials
see only the training and validation split. MR: the sentences of ``benchmarks/text_accuracy.py``
with a fixed 10% test split (stratified, seed 0). UCR: ArrowHead's published split.

Run from the project root::

    python benchmarks/tuning.py                   # MR 15 minutes, ArrowHead 10 minutes of search
    python benchmarks/tuning.py --budget-mr 5 --budget-ucr 3
    python benchmarks/tuning.py --data ArrowHead --budget-ucr 8 --output benchmarks/results/tuning_arrowhead.json

Prints a table and writes ``benchmarks/results/tuning.json``.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sklearn.model_selection import train_test_split

from seqclf.runs import DataSettings, FitSettings, fit_run
from seqclf.tuning import tune_run
from text_accuracy import movie_reviews

ROOT = Path(__file__).resolve().parent.parent
UCR = ROOT.parent / "shared" / "data" / "timeseries" / "ArrowHead"
RESULTS = ROOT / "benchmarks" / "results" / "tuning.json"


def measure(name, data, settings, minutes, scratch):
    started = time.perf_counter()
    default = fit_run(data, settings, out=scratch / f"{name}-default", verbose=0)
    default_seconds = time.perf_counter() - started
    started = time.perf_counter()
    run, trials = tune_run(data, settings, scratch / f"{name}-tuned", time_budget=minutes * 60)
    tune_seconds = time.perf_counter() - started
    rows = []
    for design, path, seconds in (("defaults", default, default_seconds), ("tuned", run, tune_seconds)):
        metrics = json.loads((path / "metrics.json").read_text())
        config = json.loads((path / "config.json").read_text())
        rows.append({"data": name, "design": design, "arch": config["settings"]["arch"],
                     "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                     "test_macro_f1": round(100 * metrics["test"]["macro_f1"], 2), "seconds": round(seconds, 1),
                     **({"trials": len(trials), "search_minutes": minutes,
                         "best": trials.sort_values("val_loss").iloc[0].drop(["status"]).to_dict()}
                        if design == "tuned" else {})})
        print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-mr", type=float, default=15, help="minutes of search on MR")
    parser.add_argument("--budget-ucr", type=float, default=10, help="minutes of search on ArrowHead")
    parser.add_argument("--data", nargs="+", default=["MR", "ArrowHead"], choices=["MR", "ArrowHead"])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if "MR" in args.data:
            reviews = movie_reviews()
            train, test = train_test_split(reviews, test_size=0.1, stratify=reviews["label"], random_state=0)
            train.to_csv(scratch / "mr_train.csv", index=False)
            test.to_csv(scratch / "mr_test.csv", index=False)
            rows += measure("MR", DataSettings(str(scratch / "mr_train.csv"), test=str(scratch / "mr_test.csv")),
                            FitSettings(), args.budget_mr, scratch)
        if "ArrowHead" in args.data:
            rows += measure("ArrowHead", DataSettings(str(UCR / "ArrowHead_TRAIN.ts"), kind="sensor",
                                                      test=str(UCR / "ArrowHead_TEST.ts")),
                            FitSettings(), args.budget_ucr, scratch)
    print()
    for row in rows:
        print(f"{row['data']:<10} {row['design']:<22} {row['arch']:<22} test accuracy {row['test_accuracy']:6.2f}%"
              + (f"  ({row['seconds']:.0f} s)" if "seconds" in row else ""))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"protocol": __doc__.split("\n\n")[1], "runs": rows}, indent=2, default=str)
                           + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
