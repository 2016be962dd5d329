"""Accuracy and training time of the default text classifier on the movie-review sentences (MR).

Data: Pang & Lee sentence polarity v1.0 (5,331 positive + 5,331 negative sentences), read from
``../shared/data/text/movie_reviews``. Protocol: a fixed stratified 90/10 train/test split per
seed (the run's validation split, for early stopping, is 10% of the whole, taken from the
90%), the default ``seqclf fit`` settings (``bigru``, 64 units, random embeddings), one run
per seed. Reference: Kim (2014) CNN with random embeddings, 76.1% (10-fold CV).

Run from the project root::

    python benchmarks/text_accuracy.py --seeds 0,1,2

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

from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
MR = ROOT.parent / "shared" / "data" / "text" / "movie_reviews"
RESULTS = ROOT / "benchmarks" / "results" / "text_accuracy.json"
KIM_CNN_RAND = 76.1
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
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one run each")
    parser.add_argument("--arch", default=FitSettings.arch)
    args = parser.parse_args()
    if not MR.exists():
        sys.exit(f"movie reviews not found at {MR}")
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "movie_reviews.csv"
        movie_reviews().to_csv(data, index=False)
        for seed in seeds:
            started = time.perf_counter()
            run = fit_run(DataSettings(str(data)), FitSettings(arch=args.arch, seed=seed),
                          out=Path(scratch) / f"run-{seed}", verbose=0)
            wall = time.perf_counter() - started
            metrics = json.loads((run / "metrics.json").read_text())
            rows.append({
                "seed": seed, "arch": args.arch, "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                "test_macro_f1": round(100 * metrics["test"]["macro_f1"], 2), "n_test": metrics["test"]["n"],
                "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
                "train_seconds": round(metrics["train_seconds"], 1), "wall_seconds": round(wall, 1),
            })
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    mean = table["test_accuracy"].mean()
    print()
    print(table.to_string(index=False))
    print(f"\nmean test accuracy {mean:.2f}% over {len(seeds)} seed(s); Kim 2014 CNN-rand {KIM_CNN_RAND}%; "
          f"slowest run {table['wall_seconds'].max():.0f} s (goal < {GOAL_SECONDS} s)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "MR (Pang & Lee 2005), fixed stratified 90/10 split per seed",
        "settings": "seqclf defaults", "runs": rows, "mean_test_accuracy": round(mean, 2),
        "reference": {"Kim 2014 CNN-rand (10-fold)": KIM_CNN_RAND}, "goal_seconds": GOAL_SECONDS,
    }, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
