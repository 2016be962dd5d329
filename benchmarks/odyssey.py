"""A small reproduction of the method of "LSTM: A Search Space Odyssey" (Greff et al. 2017) on our data.

Not of its numbers: the paper ran 200 random trials per variant and task on speech, handwriting
and music; this runs a few per variant on three of ours. For each LSTM variant (V =
``peephole-lstm``, the ``lstm-*`` cells, ``cifg``) and task, each trial draws the paper's two
dominant hyperparameters at random, the learning rate (log-uniform in [1e-4, 1e-1.5]) and the
hidden size (log-uniform in [8, 96] units), and a seed; every variant sees the same draws, so
they differ only in the cell. Each trial is one fit through the Python API with a fixed, short
budget, scored on held-out data that training never sees:

- ``mr``: 4,000 movie-review sentences to train, 1,000 others to score (accuracy), 3 epochs;
- ``pos``: 2,000 sentences of UD English EWT's training file, scored on 500 of its dev file (UPOS
  token accuracy), 4 epochs;
- ``gunpoint``: UCR GunPoint's published split (50 / 150 series), 30 epochs.

The table gives each variant's best and median trial per task and whether its trials differ from
V's (two-sided, p < 0.05; with this few trials only large differences show). Since every variant
sees the same draws, the verdict is the paired t-test over trials (trial k of a variant against
trial k of V: the hyperparameters' large effect cancels); Welch's t-test over the trials, which
ignores the pairing as the paper's unpaired draws must, is reported beside it.
The paper found that no variant beats V significantly and that removing the forget gate (NFG) or
the output activation (NOAF) hurts most. The budget (trials, sizes, epochs) was chosen so that
the whole run takes about 30 minutes on this machine's 2 cores: one trial of V and FGR per task
at the smallest budget took 4-8 s, so 6 trials of 9 variants on 3 tasks at these sizes fit.

Run from the project root::

    python benchmarks/odyssey.py                    # about 30 minutes
    python benchmarks/odyssey.py --trials 2 --tasks gunpoint

Prints the table and writes ``benchmarks/results/odyssey.json`` (every trial too).
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind, ttest_rel

from seqclf import SequenceClassifier, SequenceTagger
from seqclf.data.readers import read_table
from text_accuracy import movie_reviews  # the same sentences as the text benchmark (this folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = {"V": "peephole-lstm", "NIG": "lstm-nig", "NFG": "lstm-nfg", "NOG": "lstm-nog", "NIAF": "lstm-niaf",
            "NOAF": "lstm-noaf", "NP": "lstm-np", "CIFG": "cifg", "FGR": "lstm-fgr"}
LEARNING_RATES, UNITS = (-4.0, -1.5), (8, 96)  # log10 range; range of units (log-uniform)


def tasks():
    """``{name: (fit and score(arch, units, learning_rate, seed) -> score)}`` on the three data sets."""
    def mr():
        reviews = movie_reviews().sample(frac=1.0, random_state=0).reset_index(drop=True)
        train, held = reviews.iloc[:4000], reviews.iloc[4000:5000]
        return lambda **trial: SequenceClassifier(kind="text", epochs=3, **trial).fit(
            train["text"], train["label"]).score(held["text"], held["label"])

    def pos():
        ewt = SHARED / "tagging" / "ud_english_ewt"
        train = read_table(ewt / "en_ewt-ud-train.conllu").head(2000)
        held = read_table(ewt / "en_ewt-ud-dev.conllu").head(500)
        return lambda **trial: SequenceTagger(kind="tokens", epochs=4, **trial).fit(train).score(
            list(held["tokens"]), list(held["upos"]))

    def gunpoint():
        folder = SHARED / "timeseries" / "GunPoint"
        train, held = (read_table(folder / f"GunPoint_{part}.ts") for part in ("TRAIN", "TEST"))
        X, y = list(train["values"]), train["label"]
        return lambda **trial: SequenceClassifier(kind="sensor", epochs=30, **trial).fit(X, y).score(
            list(held["values"]), held["label"])

    return {"mr": mr, "pos": pos, "gunpoint": gunpoint}


def draws(n, seed=0):
    """``n`` trials of (learning rate, units, seed), the same for every variant."""
    rng = np.random.default_rng(seed)
    return [{"learning_rate": float(10 ** rng.uniform(*LEARNING_RATES)),
             "units": (int(round(np.exp(rng.uniform(*np.log(UNITS))))),), "seed": trial}
            for trial in range(n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6, help="trials per variant and task")
    parser.add_argument("--tasks", default="mr,pos,gunpoint")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    available, rows = tasks(), []
    started = time.perf_counter()
    for task in args.tasks.split(","):
        fit_and_score = available[task]()
        for trial, settings in enumerate(draws(args.trials)):
            for variant in args.variants.split(","):
                began = time.perf_counter()
                score = fit_and_score(arch=VARIANTS[variant], verbose=0, **settings)
                rows.append({"task": task, "variant": variant, "trial": trial, "score": round(100 * score, 2),
                             "learning_rate": settings["learning_rate"], "units": settings["units"][0],
                             "seconds": round(time.perf_counter() - began, 1)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = []
    for (task, variant), group in table.groupby(["task", "variant"], sort=False):
        vanilla = table[(table["task"] == task) & (table["variant"] == "V")].set_index("trial")["score"]
        scores = group.set_index("trial")["score"]
        welch = float(ttest_ind(scores, vanilla, equal_var=False).pvalue) if variant != "V" else float("nan")
        p = float(ttest_rel(scores, vanilla.loc[scores.index]).pvalue) if variant != "V" else float("nan")
        summary.append({"task": task, "variant": variant, "best": group["score"].max(),
                        "median": float(group["score"].median()), "mean": round(float(group["score"].mean()), 2),
                        "against_V": "" if variant == "V" else (
                            ("better" if group["score"].mean() > vanilla.mean() else "worse") if p < 0.05 else "same"),
                        "paired_p": round(p, 4), "welch_p": round(welch, 4),
                        "mean_difference": round(float((scores - vanilla.loc[scores.index]).mean()), 2),
                        "seconds": round(float(group["seconds"].sum()), 1)})
    summary = pd.DataFrame(summary)
    wall = time.perf_counter() - started
    print()
    print(summary.pivot(index="variant", columns="task", values=["best", "median"]).to_string())
    print()
    print(summary.pivot(index="variant", columns="task", values=["mean_difference", "paired_p", "against_V"]).to_string())
    print(f"\n{args.trials} trials per variant and task; {wall / 60:.1f} min in all")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "odyssey.json"
    path.write_text(json.dumps({"method": "random search over learning rate and units, same draws for every variant",
                                "learning_rate_log10_range": LEARNING_RATES, "units_range": UNITS,
                                "trials": args.trials, "wall_minutes": round(wall / 60, 1),
                                "summary": summary.to_dict(orient="records"), "runs": rows}, indent=2) + "\n")
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
