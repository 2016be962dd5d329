"""The lectures' argument for gated cells, measured: the gradient of the loss reaching each earlier step.

For an Elman network (``rnn``), an ``lstm`` and a ``gru`` (64 units, one direction, the output read
after the last step), fitted with seqclf's defaults otherwise, this computes ||dL/dx_t|| at the
recurrent layer's input by distance from the output (:func:`seqclf.gradients.gradient_by_distance`,
what ``seqclf explain --gradients`` draws) on held-out data of three sets with long sequences, for the
trained model and for the same architecture freshly initialised:

- ``arrowhead``: UCR ArrowHead's published split (36 / 175 series of 251 steps), read step by step
  (``downsample=1``: the sensor default would average it down to 50 steps), 60 epochs;
- ``mr``: 4,000 movie-review sentences to train, 3 epochs; the gradients over the held-out sentences
  of 30 tokens or more (1,000 others are scored for accuracy);
- ``shakespeare``: a character language model on the first 200,000 characters of tiny Shakespeare in
  windows of 100, 10 epochs; the gradient of the last character's loss, over 300 windows of the
  next 50,000 characters (the accuracy is next-character accuracy on those).

Per cell and set (3 seeds): held-out accuracy, the mean norm at distances 5 to 250 as a share of the
norm at the output (the geometric mean over seeds; empty beyond the longest sequence: ArrowHead
reaches 250, MR 39 (the text model reads 40 tokens at most), the language model 99), trained and
untrained, and what training recorded: the median and largest global gradient norm before clipping
and the share of steps clipped (over all epochs). ``benchmarks/results/vanishing_gradients.png``
draws the curves side by side.

Run from the project root::

    python benchmarks/vanishing_gradients.py            # about 10 minutes
    python benchmarks/vanishing_gradients.py --sets arrowhead --seeds 1
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seqclf import SequenceClassifier
from seqclf.data.readers import read_table
from seqclf.gradients import gradient_by_distance
from text_accuracy import movie_reviews  # the same sentences as the text benchmark (this folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
CELLS = ("rnn", "lstm", "gru")
DISTANCES = (5, 10, 25, 50, 75, 150, 250)
UNITS = 64
LONG_SENTENCE = 30  # tokens


def sets():
    """``{name: () -> (fit(arch, seed) -> estimator, score data, gradient data)}``."""
    def arrowhead():
        folder = SHARED / "timeseries" / "ArrowHead"
        train, test = (read_table(folder / f"ArrowHead_{part}.ts") for part in ("TRAIN", "TEST"))
        fit = lambda arch, seed: SequenceClassifier(kind="sensor", arch=arch, units=(UNITS,), pooling="last",  # noqa: E731
                                                    downsample=1, epochs=60, seed=seed, verbose=0).fit(train)
        return fit, test, test

    def mr():
        reviews = movie_reviews().sample(frac=1.0, random_state=0).reset_index(drop=True)
        train, held = reviews.iloc[:4000], reviews.iloc[4000:]
        scored = held.iloc[:1000]
        long = held[held["text"].str.split().str.len() >= LONG_SENTENCE].head(300)
        fit = lambda arch, seed: SequenceClassifier(kind="text", arch=arch, units=(UNITS,), pooling="last",  # noqa: E731
                                                    epochs=3, seed=seed, verbose=0).fit(train)
        return fit, scored, long

    def shakespeare():
        text = (SHARED / "chars" / "tiny_shakespeare.txt").read_text(encoding="utf-8")
        train = pd.DataFrame({"text": text[:200_000].split("\n")})
        held = pd.DataFrame({"text": text[200_000:250_000].split("\n")})
        fit = lambda arch, seed: SequenceClassifier(task="next-char", arch=arch, units=(UNITS,), epochs=10,  # noqa: E731
                                                    seed=seed, verbose=0).fit(train)
        return fit, held, held

    return {"arrowhead": arrowhead, "mr": mr, "shakespeare": shakespeare}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="arrowhead,mr,shakespeare")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    available, rows, curves = sets(), [], {}
    started = time.perf_counter()
    for name in args.sets.split(","):
        fit, scored, long = available[name]()
        for arch in CELLS:
            for seed in range(args.seeds):
                began = time.perf_counter()
                clf = fit(arch, seed)
                seconds = time.perf_counter() - began
                n = len(long) if name != "shakespeare" else 300
                profile = gradient_by_distance(clf, long, max_sequences=n)
                fresh = gradient_by_distance(clf, long, max_sequences=n, untrained=True, seed=seed)
                curves.setdefault((name, arch), []).append(profile.mean)
                curves.setdefault((name, f"{arch} untrained"), []).append(fresh.mean)
                history = clf.history_
                rows.append({"set": name, "cell": arch, "seed": seed,
                             "accuracy": round(100 * clf.score(scored), 2),
                             **{f"ratio_{d}": profile.ratio(d) for d in DISTANCES},
                             **{f"untrained_{d}": fresh.ratio(d) for d in DISTANCES},
                             "train_norm_median": float(np.median(history["gradient_norm_median"])),
                             "train_norm_max": float(np.max(history["gradient_norm_max"])),
                             "clipped_share": float(np.mean(history["clipped_share"])),
                             "seconds": round(seconds, 1), "sequences": int(profile.sequences[0])})
                print({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["set", "cell"], sort=False).agg(
        accuracy=("accuracy", "mean"), **{f"at_{d}": (f"ratio_{d}", _geometric_mean) for d in DISTANCES},
        **{f"untrained_at_{d}": (f"untrained_{d}", _geometric_mean) for d in DISTANCES},
        train_norm_median=("train_norm_median", "median"), train_norm_max=("train_norm_max", "max"),
        clipped_share=("clipped_share", "mean"), seconds=("seconds", "mean")).reset_index()
    wall = time.perf_counter() - started
    with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 160):
        print()
        print(summary.to_string(index=False))
    print(f"\n{args.seeds} seeds; {wall / 60:.1f} min in all")
    RESULTS.mkdir(exist_ok=True)
    _plot(curves, RESULTS / "vanishing_gradients.png")
    path = RESULTS / "vanishing_gradients.json"
    path.write_text(json.dumps({"units": UNITS, "distances": DISTANCES, "seeds": args.seeds,
                                "wall_minutes": round(wall / 60, 1), "summary": summary.to_dict(orient="records"),
                                "runs": rows,
                                "curves": {f"{s}/{c}": np.exp(np.mean(np.log(np.maximum(np.array(_even(v)), 1e-30)),
                                                                      axis=0)).tolist()
                                           for (s, c), v in curves.items()}}, indent=2) + "\n")
    print(f"written {path.relative_to(ROOT)} and benchmarks/results/vanishing_gradients.png")


def _geometric_mean(values):
    values = np.asarray(values, float)
    values = np.maximum(values[np.isfinite(values)], 1e-30)  # a norm that underflowed to 0 counts as 1e-30
    return float(np.exp(np.mean(np.log(values)))) if len(values) else float("nan")


def _even(profiles):
    """The profiles cut to the shortest (the seeds score the same data, so they have the same length)."""
    shortest = min(len(p) for p in profiles)
    return [p[:shortest] for p in profiles]


def _plot(curves, path):
    names = list(dict.fromkeys(s for s, _ in curves))
    figure = Figure(figsize=(6 * len(names), 4), layout="constrained")
    for axes, name in zip(np.atleast_1d(figure.subplots(1, len(names))), names):
        for (set_name, cell), profiles in curves.items():
            if set_name == name:
                mean = np.exp(np.mean(np.log(np.maximum(np.array(_even(profiles)), 1e-30)), axis=0))
                axes.plot(np.arange(len(mean)), mean, label=cell, linestyle="--" if "untrained" in cell else "-",
                          color=f"C{CELLS.index(cell.split()[0])}")
        axes.set_yscale("log")
        axes.set(xlabel="distance from the output (steps)", ylabel="||dL/dx_t|| (geometric mean over seeds)",
                 title=name)
        axes.grid(alpha=0.3, which="both")
        axes.legend()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
