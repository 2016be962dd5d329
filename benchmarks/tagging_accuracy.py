"""Part-of-speech tagging accuracy on Universal Dependencies English EWT (UPOS, 17 tags).

Data: ``../shared/data/tagging/ud_english_ewt`` with its official train / dev / test split
(12,544 / 2,001 / 2,077 sentences). Each run is one
``seqclf fit --task tag --arch ARCH en_ewt-ud-train.conllu --val en_ewt-ud-dev.conllu --test en_ewt-ud-test.conllu``
(word embedding plus the character encoder, everything else at its default). Beside it, the
most-frequent-tag baseline: each word's most common training tag, the overall most common tag
for unseen words. Goal: at least 93% test accuracy within 15 minutes (bi-LSTM taggers of the
literature: about 94.6%; the baseline: 86.2%).

Run from the project root::

    python benchmarks/tagging_accuracy.py           # one seed, about 2 minutes on 2 cores

Prints a table and writes ``benchmarks/results/tagging_accuracy.json``.
"""

import argparse
import json
import os
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd

from seqclf.data.readers import read_table
from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "tagging" / "ud_english_ewt"
RESULTS = ROOT / "benchmarks" / "results" / "tagging_accuracy.json"
GOAL, LIMIT_MINUTES = 93.0, 15


def most_frequent_tag(train, test):
    """Accuracy of tagging each test word with its most common training tag (unseen words: the commonest tag)."""
    by_word = defaultdict(Counter)
    for tokens, tags in zip(train["tokens"], train["upos"]):
        for token, tag in zip(tokens, tags):
            by_word[token][tag] += 1
    overall = Counter(tag for tags in train["upos"] for tag in tags).most_common(1)[0][0]
    best = {word: counts.most_common(1)[0][0] for word, counts in by_word.items()}
    hits = [best.get(token, overall) == tag for tokens, tags in zip(test["tokens"], test["upos"])
            for token, tag in zip(tokens, tags)]
    unseen = [token not in best for tokens in test["tokens"] for token in tokens]
    return float(np.mean(hits)), float(np.mean(unseen))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--arch", default="bilstm")
    parser.add_argument("--units", default="64")
    parser.add_argument("--char-encoder", default="on", choices=("on", "off"))
    args = parser.parse_args()
    train_path, dev_path, test_path = (DATA / f"en_ewt-ud-{part}.conllu" for part in ("train", "dev", "test"))
    baseline, unseen = most_frequent_tag(read_table(train_path), read_table(test_path))
    print(f"most-frequent-tag baseline: {100 * baseline:.2f}% ({100 * unseen:.1f}% of test tokens unseen in training)")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            started = time.perf_counter()
            data = DataSettings(str(train_path), kind="tokens", val=str(dev_path), test=str(test_path),
                                options={"char_encoder": args.char_encoder})
            units = tuple(int(u) for u in args.units.split(","))
            run = fit_run(data, FitSettings(arch=args.arch, units=units, task="tag", seed=seed),
                          out=Path(scratch) / f"run-{seed}", verbose=2)
            metrics = json.loads((run / "metrics.json").read_text())
            rows.append({
                "seed": seed, "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                "test_macro_f1": round(100 * metrics["test"]["macro_f1"], 2),
                "dev_accuracy": round(100 * metrics["val"]["accuracy"], 2), "test_tokens": metrics["test"]["n"],
                "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
                "train_seconds": metrics["train_seconds"], "wall_seconds": round(time.perf_counter() - started, 1),
            })
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    mean, slowest = table["test_accuracy"].mean(), table["wall_seconds"].max() / 60
    met = mean >= GOAL and slowest <= LIMIT_MINUTES
    print()
    print(table.to_string(index=False))
    print(f"\n{args.arch} {args.units} tagger (char encoder {args.char_encoder}): UPOS test accuracy {mean:.2f}% against "
          f"the most-frequent-tag baseline {100 * baseline:.2f}%; slowest run {slowest:.1f} min; goal >= {GOAL}% "
          f"within {LIMIT_MINUTES} min: {'met' if met else 'NOT met'}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "UD English EWT r2.16, official train/dev/test, UPOS", "arch": args.arch, "units": args.units,
        "char_encoder": args.char_encoder, "settings": "seqclf fit --task tag defaults otherwise",
        "most_frequent_tag_accuracy": round(100 * baseline, 2), "unseen_test_tokens": round(100 * unseen, 2),
        "runs": rows, "mean_test_accuracy": round(mean, 2), "goal": GOAL, "limit_minutes": LIMIT_MINUTES,
        "met": bool(met),
    }, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
