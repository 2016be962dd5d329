"""A small "search space odyssey": every recurrent design on the same data with the same budget.

Data: the movie-review sentences (read as ``benchmarks/text_accuracy.py`` reads them; a
stratified 10% test split, seed 0) and UEA BasicMotions (``datasets/basic_motions_*.ts``,
the published split). Each design is one ``seqclf fit`` with the same units, epochs, batch size
and seed, so only the recurrent cell (and its direction or pooling) differs. Prints accuracy,
parameter count and training time per design and writes ``benchmarks/results/architectures.json``.

Run from the project root::

    python benchmarks/architectures.py                 # about 25 minutes on 2 cores
    python benchmarks/architectures.py --data basic_motions --specs gru jordan
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd

from seqclf.runs import DataSettings, FitSettings, fit_run
from text_accuracy import movie_reviews  # the same sentences as the text benchmark (this folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("rnn", "jordan", "lstm", "peephole-lstm", "cifg", "gru", "gru-reset-before", "bigru", "bigru+attn",
         "bi-cifg+attn")
#: data name -> (how to find it, fixed budget: units, epochs, batch size)
DATA = {
    "movie_reviews": ({"kind": "text"}, {"units": (64,), "epochs": 6, "batch_size": 64}),
    "basic_motions": ({"kind": "sensor", "test": str(ROOT / "datasets" / "basic_motions_TEST.ts")},
                      {"units": (32,), "epochs": 60, "batch_size": 8}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--specs", nargs="+", default=list(SPECS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for data in args.data:
            source, budget = DATA[data]
            path = _movie_reviews(Path(scratch)) if data == "movie_reviews" else ROOT / "datasets" / "basic_motions_TRAIN.ts"
            for spec in args.specs:
                started = time.perf_counter()
                run = fit_run(DataSettings(str(path), **source),
                              FitSettings(arch=spec, seed=0, patience=budget["epochs"], **budget),
                              out=Path(scratch) / f"{data}-{spec}", verbose=0)
                metrics = json.loads((run / "metrics.json").read_text())
                config = json.loads((run / "config.json").read_text())
                rows.append({"data": data, "arch": spec, "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                             "macro_f1": round(metrics["test"]["macro_f1"], 4),
                             "parameters": config["model"]["n_parameters"],
                             "train_seconds": metrics["train_seconds"],
                             "seconds_per_epoch": round(metrics["train_seconds"] / metrics["epochs_run"], 2),
                             "best_epoch": metrics["best_epoch"], "wall_seconds": round(time.perf_counter() - started, 1)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.drop(columns=["wall_seconds"]).to_string(index=False))
    results = ROOT / "benchmarks" / "results" / "architectures.json"
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps({"budget": {k: {**v[1], "units": list(v[1]["units"])} for k, v in DATA.items()},
                                   "note": "same units, epochs (no early stop: patience = epochs), batch and seed; "
                                           "the weights of the best validation epoch are kept",
                                   "runs": rows}, indent=2) + "\n")
    print(f"written {results.relative_to(ROOT)}")


def _movie_reviews(scratch):
    """The full movie-review sentences as one labelled CSV (the split is made by ``seqclf fit``)."""
    path = scratch / "movie_reviews.csv"
    movie_reviews().to_csv(path, index=False)
    return path


if __name__ == "__main__":
    main()
