"""Where a fit's time goes, seqclf against the hand-written Keras model, on a quiet and on a busy machine.

The MR workload of ``benchmarks/speed.py`` (``bigru`` 64, embedding 128, vocabulary 20,000, batch
64, 3 epochs; the same two fits, imported from it), each in a fresh process, timed by phase with a
Keras callback added to ``model.fit``:

- ``before_fit``: everything before ``model.fit`` starts (reading, vocabulary, tokenising, building,
  compiling);
- ``first_batch``: the first training batch (tracing the training step, then running it);
- ``steps``: every other training batch, from its start to its end (the step itself);
- ``between``: from one batch's end to the next one's start (the input pipeline and callbacks);
- ``validation``: the validation passes (the first includes tracing the evaluation step);
- ``rest``: what remains of ``model.fit`` (epoch ends, restoring weights, ...).

"Busy" runs the same fits beside a pure-Python busy loop on one of the two cores, the
slowdown a shared machine sees; the phase that grows most between quiet and busy is the one
that makes a ratio swing. Rounds interleave (seqclf, keras) x (quiet, busy).

Run from the project root::

    python benchmarks/epoch_phases.py            # 2 rounds, about 8 minutes on 2 cores

Prints a table and writes ``benchmarks/results/epoch_phases.json``.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "epoch_phases.json"
PHASES = ("before_fit", "first_batch", "steps", "between", "validation", "rest")
EPOCHS = 3


class PhaseTimer(keras.callbacks.Callback):
    """Seconds spent in each phase of ``model.fit`` (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.seconds = dict.fromkeys(PHASES[1:], 0.0)
        self.batches = 0
        self.mark = self.fit_started = None

    def on_train_begin(self, logs=None):
        self.fit_started = self.mark = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._to("rest")

    def on_epoch_end(self, epoch, logs=None):
        self._to("rest")

    def _to(self, phase):
        now = time.perf_counter()
        self.seconds[phase] += now - self.mark
        self.mark = now

    def on_train_batch_begin(self, batch, logs=None):
        self._to("between" if batch else "rest")  # an epoch's first batch follows the epoch's start

    def on_train_batch_end(self, batch, logs=None):
        self._to("steps" if self.batches else "first_batch")
        self.batches += 1

    def on_test_begin(self, logs=None):
        self._to("rest")

    def on_test_end(self, logs=None):
        self._to("validation")

    def on_train_end(self, logs=None):
        self._to("rest")


def _speed_module():
    spec = importlib.util.spec_from_file_location("speed", ROOT / "benchmarks" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fit_child(implementation):
    """One timed fit in this process; prints its phases as one JSON line."""
    speed = _speed_module()
    timer, original = PhaseTimer(), keras.Model.fit

    def fit(self, *args, callbacks=None, **kwargs):
        return original(self, *args, callbacks=list(callbacks or []) + [timer], **kwargs)

    keras.Model.fit = fit
    train, val, test = speed.movie_reviews()
    probe = speed.machine_probe()
    started = time.perf_counter()
    runner = {"seqclf": speed.run_seqclf, "keras": speed.run_keras}[implementation]
    runner("text", "bigru", train, val, test, EPOCHS)
    fit_seconds = time.perf_counter() - started  # includes the export and the test predictions
    in_fit = sum(timer.seconds.values())
    before = timer.fit_started - started
    print(json.dumps({"before_fit": round(before, 2), **{k: round(v, 2) for k, v in timer.seconds.items()},
                      "in_fit": round(in_fit, 2), "train_batches": timer.batches, "fit_and_export": round(fit_seconds, 2),
                      **probe}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--fit-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_child:
        return fit_child(args.fit_child)
    rows = []
    for round_number in range(1, args.rounds + 1):
        for machine in ("quiet", "busy"):
            for implementation in ("seqclf", "keras"):
                hog = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if machine == "busy" else None)
                try:
                    out = subprocess.run([sys.executable, __file__, "--fit-child", implementation], check=True,
                                         capture_output=True, text=True)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
                rows.append({"round": round_number, "machine": machine, "implementation": implementation,
                             **json.loads(out.stdout.strip().splitlines()[-1])})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    medians = table.groupby(["implementation", "machine"], sort=False)[[*PHASES, "in_fit"]].median()
    print()
    print(f"median seconds per phase over {args.rounds} rounds, {EPOCHS} epochs:")
    print(medians.round(2).to_string())
    growth = (medians.xs("busy", level="machine") / medians.xs("quiet", level="machine")).round(2)
    print("\nbusy / quiet:")
    print(growth.to_string())
    args.output.write_text(json.dumps({"epochs": EPOCHS, "rounds": args.rounds, "runs": rows,
                                       "median": json.loads(medians.round(3).reset_index().to_json(orient="records")),
                                       "busy_over_quiet": json.loads(growth.reset_index().to_json(orient="records")),
                                       "date": time.strftime("%Y-%m-%d")}, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
