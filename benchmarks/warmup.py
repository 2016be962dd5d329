"""Which epoch early stopping keeps on small data, where the auto budget adds a warm-up.

On small training sets the auto budget raises the epochs above 20 and early stopping does not
stop during the first half of them (the warm-up). This script fits ``--samples`` random sets of
``--rows`` movie-review sentences (``datasets/movie_reviews_sample.csv``; 1,000 rows: 800 for
training, 47 epochs, warm-up 23) with the default settings, and reports for each the epoch kept,
the epoch with the lowest validation loss overall, and the test accuracy. Run it once per version
of seqclf to compare them (``PYTHONPATH=path/to/other/checkout python benchmarks/warmup.py``).

    python benchmarks/warmup.py                 # 3 samples of 1,000 sentences, about 3 minutes on 2 cores

Prints a table and writes ``benchmarks/results/warmup.json`` (``--output`` to write elsewhere).
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd

import seqclf
from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
REVIEWS = ROOT / "datasets" / "movie_reviews_sample.csv"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "warmup.json")
    args = parser.parse_args()
    reviews = pd.read_csv(REVIEWS)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for sample in range(args.samples):
            data = Path(scratch) / f"reviews-{sample}.csv"
            reviews.sample(args.rows, random_state=sample).to_csv(data, index=False)
            run = fit_run(DataSettings(str(data)), FitSettings(seed=sample), out=Path(scratch) / f"run-{sample}",
                          verbose=0)
            metrics = json.loads((run / "metrics.json").read_text())
            history = pd.read_csv(run / "history.csv")
            rows.append({"sample": sample, "epochs_run": metrics["epochs_run"], "warmup": metrics["budget"]["warmup"],
                         "kept_epoch": metrics["best_epoch"],
                         "lowest_val_loss_epoch": int(np.argmin(history["val_loss"])) + 1,
                         "kept_val_loss": round(float(history["val_loss"][metrics["best_epoch"] - 1]), 4),
                         "lowest_val_loss": round(float(history["val_loss"].min()), 4),
                         "test_accuracy": round(100 * metrics["test"]["accuracy"], 2)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False))
    print(f"mean test accuracy {table['test_accuracy'].mean():.2f} (sd {table['test_accuracy'].std():.2f})")
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps({"seqclf": seqclf.__file__, "rows_per_sample": args.rows, "runs": rows,
                                       "mean_test_accuracy": round(float(table["test_accuracy"].mean()), 2)},
                                      indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
