"""Per-step accuracy of a many-to-many sensor model on long BasicMotions recordings.

Data: ``datasets/basic_motions_long_{TRAIN,TEST}.csv`` (``datasets/make_basic_motions_long.py``):
8 training and 8 test recordings of 500 steps, each five BasicMotions cases (training cases for
training, test cases for testing) strung together, labelled per step, so the activity changes
within a recording. Each run is one
``seqclf fit --task many-to-many --window W --stride S TRAIN.csv --test TEST.csv``; the test
metrics count every step of every test window. Goal: at least 90% per-step accuracy.

Run from the project root::

    python benchmarks/timeseries_many_to_many.py            # 3 seeds, about 5 minutes on 2 cores

Prints a table and writes ``benchmarks/results/timeseries_many_to_many.json``.
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

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "datasets" / "basic_motions_long_TRAIN.csv"
TEST = ROOT / "datasets" / "basic_motions_long_TEST.csv"
RESULTS = ROOT / "benchmarks" / "results" / "timeseries_many_to_many.json"
GOAL = 90.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arch", default="bigru")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--stride", type=int, default=50)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            started = time.perf_counter()
            data = DataSettings(str(TRAIN), kind="sensor", test=str(TEST),
                                options={"window": args.window, "stride": args.stride})
            run = fit_run(data, FitSettings(arch=args.arch, task="many-to-many", seed=seed),
                          out=Path(scratch) / f"run-{seed}", verbose=0)
            metrics = json.loads((run / "metrics.json").read_text())
            rows.append({
                "seed": seed, "per_step_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                "per_step_macro_f1": round(100 * metrics["test"]["macro_f1"], 2), "test_steps": metrics["test"]["n"],
                "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
                "wall_seconds": round(time.perf_counter() - started, 1),
            })
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    mean = table["per_step_accuracy"].mean()
    print()
    print(table.to_string(index=False))
    print(f"\n{args.arch} many-to-many, window {args.window}, stride {args.stride}: mean per-step accuracy "
          f"{mean:.2f}% (sd {table['per_step_accuracy'].std():.2f}); goal >= {GOAL}%: {'met' if mean >= GOAL else 'NOT met'}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "BasicMotions cases strung into 8 + 8 recordings of 500 steps (datasets/make_basic_motions_long.py)",
        "arch": args.arch, "window": args.window, "stride": args.stride, "settings": "seqclf fit defaults",
        "runs": rows, "mean_per_step_accuracy": round(mean, 2), "goal": GOAL,
    }, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
