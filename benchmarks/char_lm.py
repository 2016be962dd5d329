"""Character language model on tiny Shakespeare: validation loss in nats (and bits) per character.

Data: ``../shared/data/chars/tiny_shakespeare.txt`` (1,115,394 characters, 65 symbols), first
90% for training, last 10% for validation, the usual convention. The run is one
``seqclf fit --task next-char --arch ARCH train.txt --val valid.txt --test valid.txt`` (the
test metrics are then the validation loss over every character of the last 10%), followed by
``seqclf generate RUN --prime "ROMEO:" --length 500 --temperature 0.8``. Goal: at most 1.8
nats per character within 15 minutes (a small LSTM on a CPU typically lands between 1.5 and
2.0; a 6-layer transformer about 1.47).

Run from the project root::

    python benchmarks/char_lm.py            # about 12 minutes on 2 cores

Prints a table and the sample, and writes ``benchmarks/results/char_lm.json``.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from seqclf.estimators import load
from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "chars" / "tiny_shakespeare.txt"
RESULTS = ROOT / "benchmarks" / "results" / "char_lm.json"
GOAL_NATS, LIMIT_MINUTES = 1.8, 15


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="lstm")
    parser.add_argument("--units", default="256")
    parser.add_argument("--epochs", type=int, help="[default: seqclf's auto budget]")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    text = DATA.read_text(encoding="utf-8")
    cut = int(0.9 * len(text))
    with tempfile.TemporaryDirectory() as scratch:
        train, valid = Path(scratch) / "train.txt", Path(scratch) / "valid.txt"
        train.write_text(text[:cut], encoding="utf-8")
        valid.write_text(text[cut:], encoding="utf-8")
        started = time.perf_counter()
        units = tuple(int(u) for u in args.units.split(","))
        run = fit_run(DataSettings(str(train), kind="chars", val=str(valid), test=str(valid)),
                      FitSettings(arch=args.arch, units=units, task="next-char", epochs=args.epochs,
                                  batch_size=args.batch_size, seed=args.seed),
                      out=Path(scratch) / "run", verbose=2)
        minutes = (time.perf_counter() - started) / 60
        metrics = json.loads((run / "metrics.json").read_text())
        generated = load(run).generate("ROMEO:", length=500, temperature=0.8, seed=args.seed)
    loss = metrics["test"]["cross_entropy"]
    row = {"arch": args.arch, "units": args.units, "validation_nats_per_char": round(loss["nats_per_char"], 4),
           "validation_bits_per_char": round(loss["bits_per_char"], 4), "validation_accuracy":
           round(100 * metrics["test"]["accuracy"], 2), "characters": loss["characters"],
           "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
           "train_seconds": metrics["train_seconds"], "wall_minutes": round(minutes, 2)}
    met = loss["nats_per_char"] <= GOAL_NATS and minutes <= LIMIT_MINUTES
    print()
    for key, value in row.items():
        print(f"{key:<26} {value}")
    print(f"\ngoal <= {GOAL_NATS} nats/char within {LIMIT_MINUTES} min: {'met' if met else 'NOT met'}\n")
    print("sample (prime 'ROMEO:', 500 characters, temperature 0.8):\n")
    print("ROMEO:" + generated)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "tiny Shakespeare, first 90% train, last 10% validation", "settings": vars(args), **row,
        "goal_nats_per_char": GOAL_NATS,
        "limit_minutes": LIMIT_MINUTES, "met": bool(met), "sample": "ROMEO:" + generated,
    }, indent=2) + "\n")
    print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
