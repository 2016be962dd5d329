"""Data larger than memory: peak memory and time per epoch as the rows grow, streamed against in memory.

A generated text set (short sentences of real movie-review words; the label is carried by cue
words, with 10% of labels flipped) at 1x, 4x and 16x rows (16x = 2,097,152 rows), written as
Parquet shards of 131,072 rows. Each size is trained twice, each time in a fresh process
through the CLI's own code path (``seqclf.cli.main``):

- ``streamed``: ``seqclf fit "DIR/part-*.parquet"``, read a chunk at a time;
- ``in memory``: ``seqclf fit DIR/all.parquet``, the same rows in one file, read whole.

Both train one epoch of a small model (``gru``, 16 units, embedding 16, batch 256), so the
per-row work is the same; time per epoch is the training time from ``metrics.json`` (one
epoch with its validation pass, tracing included). Peak memory is the process's own high-water
mark (``VmHWM`` in ``/proc/self/status``, read as the process ends). Goals: the streamed peak
stays within 20% from 1x to 16x; time per epoch grows linearly with the rows.

Run from the project root::

    python benchmarks/scale.py               # about 25 minutes on 2 cores
    python benchmarks/scale.py --base 8192   # a quick look with 16x fewer rows

Prints a table and writes ``benchmarks/results/scale.json``.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
SHARD_ROWS = 131_072
SIZES = (1, 4, 16)
SETTINGS = ["--arch", "gru", "--units", "16", "--embedding-dim", "16", "--batch-size", "256", "--epochs", "1",
            "--dropout", "0", "--verbose", "0"]
#: Runs the CLI in a child process and reports its own peak memory (VmHWM) as it ends.
CHILD = """
import sys
from seqclf.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    peak = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")][0]
    open(sys.argv[sys.argv.index("--out") + 1] + ".peak", "w").write(peak)
"""


def words():
    """The words of the movie-review sample, most frequent first."""
    text = pd.read_csv(ROOT / "datasets" / "movie_reviews_sample.csv")["text"].str.lower().str.split()
    return text.explode().value_counts().index.tolist()


def generate(n_rows, seed):
    """``n_rows`` sentences of 6 to 20 words; 1 or 2 cue words of their label's 200; 10% of labels flipped."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(words()[:5000], dtype=object)
    cues = {"pos": vocabulary[5000 - 400:5000 - 200], "neg": vocabulary[5000 - 200:]}
    common = vocabulary[:4600]
    labels = rng.choice(["pos", "neg"], n_rows)
    lengths = rng.integers(6, 21, n_rows)
    filler = common[rng.integers(0, len(common), (n_rows, 20))]
    texts = []
    for i in range(n_rows):
        sentence = list(filler[i, : lengths[i]])
        for _ in range(rng.integers(1, 3)):
            sentence[rng.integers(0, len(sentence))] = rng.choice(cues[labels[i]])
        texts.append(" ".join(sentence))
    flipped = rng.random(n_rows) < 0.1
    labels = np.where(flipped, np.where(labels == "pos", "neg", "pos"), labels)
    return pd.DataFrame({"text": texts, "label": labels})


def write_data(folder, multiple, base, seed=0):
    """``multiple`` shards of ``base`` rows in ``folder``, and the same rows as ``folder/all.parquet``."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [generate(base, seed + number) for number in range(multiple)]
    for number, part in enumerate(parts):
        part.to_parquet(folder / f"part-{number:03d}.parquet", index=False)
    whole = pd.concat(parts, ignore_index=True)
    whole.to_parquet(folder / "all.parquet", index=False)
    return len(whole)


def fit(data, out):
    """One ``seqclf fit`` in a fresh process: (wall seconds, training seconds per epoch, peak MiB, test accuracy)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD, "fit", str(data), "--out", str(out), *SETTINGS],
                            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"seqclf fit {data} failed:\n{result.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    peak = int(Path(f"{out}.peak").read_text()) / 1024
    return {"wall_seconds": round(wall, 1), "seconds_per_epoch": round(metrics["train_seconds"] / metrics["epochs_run"], 1),
            "peak_mib": round(peak, 1), "test_accuracy": round(metrics["test"]["accuracy"], 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=SHARD_ROWS, help="rows at 1x (one shard)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqclf-scale-"))
    rows = []
    try:
        for multiple in SIZES:
            folder = work / f"x{multiple}"
            n = write_data(folder, multiple, args.base)
            for mode, data in (("streamed", f"{folder}/part-*.parquet"), ("in memory", folder / "all.parquet")):
                measured = fit(data, work / f"run-x{multiple}-{mode.replace(' ', '-')}")
                rows.append({"rows": n, "multiple": multiple, "mode": mode, **measured})
                print(f"{n:>10,} rows  {mode:<9}  {measured}", flush=True)
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rows, args)


def report(rows, args):
    print(f"\n{'rows':>10} {'mode':<10} {'s/epoch':>8} {'x 1x':>6} {'peak MiB':>9} {'x 1x':>6} {'test acc':>9}")
    summary = {}
    for mode in ("streamed", "in memory"):
        mine = [r for r in rows if r["mode"] == mode]
        for r in mine:
            r["time_ratio"] = round(r["seconds_per_epoch"] / mine[0]["seconds_per_epoch"], 2)
            r["peak_ratio"] = round(r["peak_mib"] / mine[0]["peak_mib"], 3)
            print(f"{r['rows']:>10,} {mode:<10} {r['seconds_per_epoch']:>8.1f} {r['time_ratio']:>6.2f} "
                  f"{r['peak_mib']:>9.1f} {r['peak_ratio']:>6.3f} {r['test_accuracy']:>9.4f}")
        n, seconds = np.array([r["rows"] for r in mine], float), np.array([r["seconds_per_epoch"] for r in mine])
        slope, fixed = np.polyfit(n, seconds, 1)  # time per epoch = fixed + slope * rows
        worst = float(np.max(np.abs(fixed + slope * n - seconds) / seconds))
        summary[mode] = {"peak_growth_1x_to_16x": mine[-1]["peak_ratio"], "time_growth_1x_to_16x": mine[-1]["time_ratio"],
                         "fixed_seconds": round(float(fixed), 2), "seconds_per_million_rows": round(float(slope) * 1e6, 1),
                         "largest_deviation_from_the_line": round(worst, 3)}
        print(f"{mode}: time per epoch = {fixed:.1f} s + {slope * 1e6:.1f} s per million rows "
              f"(largest deviation from that line {worst:.1%})")
    streamed = summary["streamed"]
    print(f"\nstreamed peak memory 1x -> 16x: x{streamed['peak_growth_1x_to_16x']:.3f} (goal: within 1.20); "
          f"time per epoch x{streamed['time_growth_1x_to_16x']:.2f} for 16x the rows")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"command": "python benchmarks/scale.py" + (
        f" --base {args.base}" if args.base != SHARD_ROWS else ""), "settings": SETTINGS, "shard_rows": args.base,
        "rows": rows, "summary": summary}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
