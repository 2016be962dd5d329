"""Grapheme-to-phoneme on CMUdict: seqclf's encoder-decoder with and without attention, greedy and beam search.

Data: ``../shared/data/seq2seq/cmudict/cmudict.dict`` (CMUdict 0.7b). Comments after ``#`` and
the ``(2)`` of alternative pronunciations are dropped, stress digits removed (39 phones); the
distinct words are shuffled with ``--seed`` and split 90/5/5 into training, validation and test
words, every pronunciation of a word on its word's side. Each model is one ``seqclf fit --task
seq2seq --target-tokens space`` (characters in, phones out) of the written train file, with the
validation and test files given; the test words are then decoded greedily and with a beam.

Scores, over distinct test words: WER (a word is right if its output equals any of its
pronunciations), PER (edit distance to the closest pronunciation over its length), and WER by
word length. The baseline a reader can check: each letter's most frequent phone, learnt from the
training words whose letters and phones have the same count (aligned one to one), one phone per
letter. Published figures (../shared/data/README.md) use Stanley Chen's fixed split, not this
one.

Run from the project root::

    python benchmarks/g2p.py                                # both models, full dictionary
    python benchmarks/g2p.py --words 5000 --epochs 3 --attention additive   # a quick look
    python benchmarks/g2p.py --words 30000 --epochs 12 --attention additive --option decoder=gru:384

Prints a table and writes ``benchmarks/results/g2p.json``.
"""

import argparse
import json
import os
import re
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One thread per operation, two operations at a time: the encoder's directions and the small matrices of a
# decoder step run side by side instead of each being split across the cores (2 cores, batches of 256: a training
# step of bigru:128 with a GRU decoder of 256 took 113-118 ms instead of 149-154, and bigru:128,128 on 27,000
# words, with ebf1a2c's batching, 186-191 ms instead of 214-218). Set TF_NUM_INTRAOP_THREADS to choose otherwise.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import numpy as np
import pandas as pd

from seqclf.estimators import load
from seqclf.runs import DataSettings, FitSettings, fit_run
from seqclf.tasks.seq2seq import scores

ROOT = Path(__file__).resolve().parent.parent
DICTIONARY = ROOT.parent / "shared" / "data" / "seq2seq" / "cmudict" / "cmudict.dict"
RESULTS = ROOT / "benchmarks" / "results" / "g2p.json"
LENGTHS = ((1, 4), (5, 6), (7, 8), (9, 10), (11, 99))
PUBLISHED = ("Stanley Chen's split: Phonetisaurus WFST 24.4 WER; bi-LSTM (Yao & Zweig 2015) 23.55 / 5.45 PER; "
             "attention ensemble of 5 (Toshniwal & Livescu 2016) 20.24 / 4.69; random splits, stress removed: "
             "8-gram WFST 24.8 / 3.0")


def read_dictionary(path=DICTIONARY):
    """``(word, phones)`` pairs: comments and ``(2)`` markers dropped, stress removed."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            word, *phones = line.split()
            pairs.append((re.sub(r"\(\d+\)$", "", word), " ".join(re.sub(r"\d", "", p) for p in phones)))
    return pd.DataFrame(pairs, columns=["source", "target"]).drop_duplicates()


def split_by_word(frame, seed, words=None):
    """Train, validation and test frames, 90/5/5 of the distinct words (``words``: a random subset of them)."""
    distinct = np.random.default_rng(seed).permutation(frame["source"].unique())
    distinct = distinct[:words] if words else distinct
    n_val = n_test = int(round(0.05 * len(distinct)))
    parts = distinct[n_val + n_test:], distinct[:n_val], distinct[n_val:n_val + n_test]
    return [frame[frame["source"].isin(set(part))] for part in parts]


def letter_baseline(train, test_words):
    """Each letter's most frequent phone over the one-to-one aligned training words; one phone per letter."""
    counts = defaultdict(Counter)
    for word, phones in zip(train["source"], train["target"]):
        phones = phones.split()
        if len(phones) == len(word):
            for letter, phone in zip(word, phones):
                counts[letter][phone] += 1
    best = {letter: c.most_common(1)[0][0] for letter, c in counts.items()}
    return [" ".join(best[letter] for letter in word if letter in best) for word in test_words]


def by_length(words, outputs, references):
    """WER per word-length bucket."""
    table = {}
    for low, high in LENGTHS:
        chosen = [i for i, w in enumerate(words) if low <= len(w) <= high]
        if chosen:
            wer = 1 - np.mean([outputs[i] in references[i] for i in chosen])
            table[f"{low}-{high}" if high < 99 else f"{low}+"] = {"wer": round(float(wer) * 100, 2), "n": len(chosen)}
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attention", nargs="+", default=["additive", "none"], choices=("additive", "none"))
    parser.add_argument("--arch", default="bigru:128,128")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-source-length", type=int, default=32,
                        help="Letters per word read at most (the longest word has 28; the 99th percentile, 14, would "
                             "cut the 0.6%% longer words short).")
    parser.add_argument("--max-target-length", type=int, default=20,
                        help="Phones per output at most (the 99th percentile, 13, would make 1%% of the words "
                             "impossible).")
    parser.add_argument("--learning-rate", type=float, default=None, help="[default: the task's, 0.003]")
    parser.add_argument("--lr-schedule", default="auto", choices=("auto", "constant", "plateau", "cosine"),
                        help="[default: the task's, plateau]")
    parser.add_argument("--dropout", type=float, default=None, help="[default: the task's, 0.1]")
    parser.add_argument("--label-smoothing", type=float, default=None, help="[default: the task's, 0]")
    parser.add_argument("--beam-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--words", type=int, default=None, help="Use a random subset of this many words.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", dest="options", action="append", default=[], metavar="NAME=VALUE",
                        help="A further option of the pairs kind, such as decoder=gru:384 or embedding_dim=128 "
                             "(repeatable).")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    train, val, test = split_by_word(read_dictionary(), args.seed, args.words)
    grouped = test.groupby("source", sort=False)["target"].agg(list)
    words, references = list(grouped.index), list(grouped)
    print(f"words: {train['source'].nunique()} train, {val['source'].nunique()} validation, {len(words)} test")
    baseline = letter_baseline(train, words)
    rows = [{"model": "letter baseline", "decoding": "-", **_scored(words, baseline, references), "train_seconds": 0}]
    with tempfile.TemporaryDirectory() as scratch:
        files = {}
        for name, part in (("train", train), ("val", val), ("test", test)):
            files[name] = Path(scratch) / f"{name}.tsv"
            part.to_csv(files[name], sep="\t", index=False)
        for attention in args.attention:
            run = Path(scratch) / f"run-{attention}"
            settings = FitSettings(task="seq2seq", arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                                   learning_rate=args.learning_rate, lr_schedule=args.lr_schedule,
                                   dropout=args.dropout, label_smoothing=args.label_smoothing, seed=args.seed)
            data = DataSettings(str(files["train"]), val=str(files["val"]), test=str(files["test"]),
                                options={"target_tokens": "space", "attention": attention,
                                         "max_source_length": args.max_source_length,
                                         "max_target_length": args.max_target_length, **_options(args.options)})
            started = time.perf_counter()
            fit_run(data, settings, out=run, verbose=2)
            seconds = time.perf_counter() - started
            metrics = json.loads((run / "metrics.json").read_text())
            model = load(run)
            for beam in args.beam_sizes:
                started = time.perf_counter()
                outputs = model.predict(words, beam_size=beam)
                rows.append({"model": f"{args.arch}, attention {attention}", "decoding": "greedy" if beam == 1 else
                             f"beam {beam}", **_scored(words, list(outputs), references),
                             "train_seconds": round(metrics["train_seconds"], 1), "fit_seconds": round(seconds, 1),
                             "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
                             "learning_rate": metrics["budget"]["learning_rate"],
                             "lr_schedule": metrics["budget"]["lr_schedule"],
                             "decode_seconds": round(time.perf_counter() - started, 1),
                             "parameters": model.n_parameters_, "options": args.options,
                             "loss_by_epoch": {k: [round(v, 4) for v in model.history_[k]] for k in ("loss", "val_loss")}})
    table = pd.DataFrame(rows)
    print(table[["model", "decoding", "wer", "per", "train_seconds"]].to_string(index=False))
    print("WER by word length (characters):")
    for row in rows:
        print(f"  {row['model']:<32} {row['decoding']:<7} " + "  ".join(
            f"{k}: {v['wer']:.1f} (n={v['n']})" for k, v in row["by_length"].items()))
    print(f"published, for comparison (another split): {PUBLISHED}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"command": vars(args) | {"output": str(args.output)}, "rows": rows,
                                       "published": PUBLISHED, "date": time.strftime("%Y-%m-%d")}, indent=2,
                                      default=str) + "\n")
    print(f"written {args.output}")


def _options(pairs):
    """``NAME=VALUE`` strings as kind options: integers as integers, the rest as strings."""
    options = dict(pair.split("=", 1) for pair in pairs)
    return {name: int(value) if value.isdigit() else value for name, value in options.items()}


def _scored(words, outputs, references):
    measured = scores(outputs, references, "space")
    return {"wer": round(measured["word_error_rate"] * 100, 2), "per": round(measured["symbol_error_rate"] * 100, 2),
            "n": measured["n"], "by_length": by_length(words, outputs, references)}


if __name__ == "__main__":
    main()
