"""Accuracy and training time of the default text classifier on the movie-review sentences (MR).

Data: Pang & Lee sentence polarity v1.0 (5,331 positive + 5,331 negative sentences), read from
``../shared/data/text/movie_reviews``. Protocol: stratified 10-fold cross-validation, as Kim
(2014) reports (CNN with random embeddings: 76.1%). Each fold is one ``seqclf fit`` with the
default settings (``bigru``, 64 units, random embeddings) on the other nine folds, which it
splits 90/10 into training and validation (for early stopping), and ``--test`` the fold.

Run from the project root::

    python benchmarks/text_accuracy.py            # 10 folds, about 12 minutes on 2 cores
    python benchmarks/text_accuracy.py --folds 3  # quicker, less comparable

Prints a table and writes ``benchmarks/results/text_accuracy.json``.
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
from sklearn.model_selection import StratifiedKFold

from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
MR = ROOT.parent / "shared" / "data" / "text" / "movie_reviews"
RESULTS = ROOT / "benchmarks" / "results" / "text_accuracy.json"
KIM_CNN_RAND = 76.1
GOAL_ACCURACY = 76.0
GOAL_SECONDS = 300


def movie_reviews():
    """The MR sentences as a table with ``text`` and ``label`` columns."""
    frames = [
        pd.DataFrame({"text": (MR / f"rt-polarity.{label}").read_text(encoding="utf-8").splitlines(), "label": label})
        for label in ("pos", "neg")
    ]
    return pd.concat(frames, ignore_index=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--arch", default=FitSettings.arch)
    args = parser.parse_args()
    if not MR.exists():
        sys.exit(f"movie reviews not found at {MR}")
    reviews = movie_reviews()
    folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0).split(reviews, reviews["label"])
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for fold, (train_index, test_index) in enumerate(folds):
            reviews.iloc[train_index].to_csv(scratch / "train.csv", index=False)
            reviews.iloc[test_index].to_csv(scratch / "test.csv", index=False)
            started = time.perf_counter()
            run = fit_run(DataSettings(str(scratch / "train.csv"), test=str(scratch / "test.csv")),
                          FitSettings(arch=args.arch), out=scratch / f"run-{fold}", verbose=0)
            wall = time.perf_counter() - started
            metrics = json.loads((run / "metrics.json").read_text())
            rows.append({
                "fold": fold, "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                "test_macro_f1": round(100 * metrics["test"]["macro_f1"], 2), "n_test": metrics["test"]["n"],
                "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
                "train_seconds": round(metrics["train_seconds"], 1), "wall_seconds": round(wall, 1),
            })
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    mean, std = table["test_accuracy"].mean(), table["test_accuracy"].std()
    print()
    print(table.to_string(index=False))
    print(f"\n{args.arch}: mean test accuracy {mean:.2f}% (sd {std:.2f}) over {args.folds} folds; "
          f"Kim 2014 CNN-rand {KIM_CNN_RAND}% (goal >= {GOAL_ACCURACY}%); "
          f"slowest fit {table['wall_seconds'].max():.0f} s (goal < {GOAL_SECONDS} s)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "MR (Pang & Lee 2005), stratified k-fold cross-validation, shuffle seed 0",
        "arch": args.arch, "settings": "seqclf fit defaults", "folds": rows,
        "mean_test_accuracy": round(mean, 2), "sd_test_accuracy": round(std, 2),
        "reference": {"Kim 2014 CNN-rand (10-fold)": KIM_CNN_RAND}, "goal_seconds": GOAL_SECONDS,
    }, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
