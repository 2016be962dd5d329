"""Part-of-speech tagging accuracy on Universal Dependencies English EWT (UPOS, 17 tags).

Data: ``../shared/data/tagging/ud_english_ewt`` with its official train / dev / test split
(12,544 / 2,001 / 2,077 sentences). Each run is one
``seqclf fit --task tag --arch ARCH en_ewt-ud-train.conllu --val en_ewt-ud-dev.conllu --test en_ewt-ud-test.conllu``
(word embedding plus the character encoder, everything else at its default). Beside it, the
most-frequent-tag baseline: each word's most common training tag, the overall most common tag
for unseen words. Goal: at least 93% test accuracy within 15 minutes (bi-LSTM taggers of the
literature: about 94.6%; the baseline: 86.2%).

Run from the project root::

    python benchmarks/tagging_accuracy.py           # one seed, about 3 minutes on 2 cores

    python benchmarks/tagging_accuracy.py --heads softmax,crf --seeds 3    # about 16 minutes
    python benchmarks/tagging_accuracy.py --data conll2000 --seeds 3   # about 30 minutes
    python benchmarks/tagging_accuracy.py --data conll2000 --embeddings glove --output conll2000_glove.json

``--data conll2000``: chunking on the CoNLL-2000 shared task's own ``train.txt`` / ``test.txt``
(``../shared/data/tagging/conll2000``; 10% of the training sentences validate), ``bilstm``
by default, chunk F1 by seqeval in strict IOB2 mode (conlleval's default mode beside it) and
token accuracy; the test file's two ``I-LST`` tokens, a tag training lacks, count as errors.
``crf-bio`` is ``--head crf --constrain-bio``; a ``+pos`` variant also reads the files' POS
column (``--token-features column_2``). Each variant also reports its prediction speed (test
sentences per second through the fitted estimator). Goal: chunk F1 >= 93 without the POS
column and >= 94 with it, within 15 minutes of training.

``--embeddings glove`` starts the word embedding from GloVe's 6B 100-dimensional vectors (fetched and
converted by ``benchmarks/glove.py``; fine-tuned, as ``seqclf fit --embeddings FILE``), or from any
vector file given by path.

Prints a table and writes ``benchmarks/results/tagging_accuracy.json`` (``tagging_conll2000.json``;
``--output NAME`` another file in ``benchmarks/results``).
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
from seqclf import load
from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "tagging" / "ud_english_ewt"
CONLL2000 = ROOT.parent / "shared" / "data" / "tagging" / "conll2000"
RESULTS = ROOT / "benchmarks" / "results"
GOAL, LIMIT_MINUTES = 93.0, 15
HEADS = {"softmax": {"head": "softmax"}, "crf": {"head": "crf"}, "crf-bio": {"head": "crf", "constrain_bio": True}}
CHUNK_GOALS = {False: 93.0, True: 94.0}  # without, with the POS column


def variant(name, pos_column):
    """The kind options of a variant: a head of :data:`HEADS`, ``+pos`` reading ``pos_column`` too."""
    head, plus, extra = name.partition("+")
    if head not in HEADS or (plus and extra != "pos"):
        raise SystemExit(f"unknown variant {name!r}: one of {', '.join(HEADS)}, each optionally with +pos")
    return {**HEADS[head], **({"token_features": pos_column} if extra else {})}


def vectors(args):
    """The kind option that starts the embedding from ``--embeddings``, if given."""
    return {"embeddings": args.embeddings} if args.embeddings else {}


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
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from here (--seeds of them)")
    parser.add_argument("--arch", default="bilstm")
    parser.add_argument("--units", default="64")
    parser.add_argument("--char-encoder", default="on", choices=("on", "off"))
    parser.add_argument("--data", default="ewt", choices=("ewt", "conll2000"))
    parser.add_argument("--heads", default=None, help="comma-separated: softmax, crf, crf-bio, each optionally with "
                                                      "+pos (the POS column) [ewt: softmax; conll2000: softmax,crf,"
                                                      "softmax+pos,crf+pos]")
    parser.add_argument("--embeddings", default=None, help="pretrained word vectors: 'glove' (benchmarks/glove.py) "
                                                           "or a vector file's path [default: none, random]")
    parser.add_argument("--output", default=None, help="results file name in benchmarks/results")
    parser.add_argument("--epochs", type=int, default=None, help="the fit's --epochs [default: its default, 20]")
    args = parser.parse_args()
    if args.embeddings == "glove":
        from glove import glove_100d

        args.embeddings = str(glove_100d())
    if args.data == "conll2000":
        return chunking(args)
    train_path, dev_path, test_path = (DATA / f"en_ewt-ud-{part}.conllu" for part in ("train", "dev", "test"))
    baseline, unseen = most_frequent_tag(read_table(train_path), read_table(test_path))
    print(f"most-frequent-tag baseline: {100 * baseline:.2f}% ({100 * unseen:.1f}% of test tokens unseen in training)")
    heads = (args.heads or "softmax").split(",")
    data = lambda head: DataSettings(str(train_path), kind="tokens", val=str(dev_path), test=str(test_path),
                                     options={"char_encoder": args.char_encoder, **vectors(args),
                                              **variant(head, "xpos")})
    rows = [{**row, "test_macro_f1": round(100 * metrics["test"]["macro_f1"], 2),
             "dev_accuracy": round(100 * metrics["val"]["accuracy"], 2)}
            for row, metrics, _ in runs(args, heads, data, read_table(test_path))]
    table = pd.DataFrame(rows)
    means = table.groupby("head", sort=False)["test_accuracy"].mean()
    slowest = table["wall_seconds"].max() / 60
    met = means.max() >= GOAL and slowest <= LIMIT_MINUTES
    print()
    print(table.to_string(index=False))
    print(f"\n{args.arch} {args.units} tagger (char encoder {args.char_encoder}): UPOS test accuracy "
          f"{', '.join(f'{head} {mean:.2f}%' for head, mean in means.items())} against the most-frequent-tag baseline "
          f"{100 * baseline:.2f}%; slowest run {slowest:.1f} min; goal >= {GOAL}% within {LIMIT_MINUTES} min: "
          f"{'met' if met else 'NOT met'}")
    write(RESULTS / (args.output or "tagging_accuracy.json"), {
        "data": "UD English EWT r2.16, official train/dev/test, UPOS", "arch": args.arch, "units": args.units,
        "embeddings": args.embeddings and Path(args.embeddings).name, "epochs": args.epochs or "default",
        "char_encoder": args.char_encoder, "settings": "seqclf fit --task tag defaults otherwise",
        "most_frequent_tag_accuracy": round(100 * baseline, 2), "unseen_test_tokens": round(100 * unseen, 2),
        "runs": rows, "mean_test_accuracy": {h: round(m, 2) for h, m in means.items()}, "goal": GOAL,
        "limit_minutes": LIMIT_MINUTES, "met": bool(met)})


def runs(args, heads, data, test):
    """Fit each head with each seed (heads interleaved); yield ``(row, metrics, test predictions)``; ``test``: the
    test file's sentences, predicted again to time the fitted tagger."""
    units = tuple(int(u) for u in args.units.split(","))
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for head in heads:
                started = time.perf_counter()
                budget = {"epochs": args.epochs} if args.epochs else {}
                run = fit_run(data(head), FitSettings(arch=args.arch, units=units, task="tag", seed=seed, **budget),
                              out=Path(scratch) / f"{head}-{seed}", verbose=2)
                wall = time.perf_counter() - started
                metrics = json.loads((run / "metrics.json").read_text())
                tagger = load(run)
                tagger.predict(test.head(64))  # traced once, outside the timing
                started = time.perf_counter()
                tagger.predict(test)
                speed = len(test) / (time.perf_counter() - started)
                row = {"head": head, "seed": seed, "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                       "test_tokens": metrics["test"]["n"], "epochs_run": metrics["epochs_run"],
                       "best_epoch": metrics["best_epoch"], "train_seconds": metrics["train_seconds"],
                       "seconds_per_epoch": round(metrics["train_seconds"] / metrics["epochs_run"], 1),
                       "wall_seconds": round(wall, 1), "predicted_sentences_per_second": round(speed, 1)}
                print(row, flush=True)
                yield row, metrics, pd.read_csv(run / "test_predictions.csv", keep_default_na=False)


def chunking(args):
    """CoNLL-2000 chunking on the official split: chunk F1 (strict IOB2) and token accuracy per head."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    heads = (args.heads or "softmax,crf,softmax+pos,crf+pos").split(",")
    train_path, test_path = CONLL2000 / "train.txt", CONLL2000 / "test.txt"
    data = lambda head: DataSettings(str(train_path), kind="tokens", test=str(test_path), format="conll",
                                     options={"char_encoder": args.char_encoder, **vectors(args),
                                              **variant(head, "column_2")})
    rows = []
    for row, metrics, table in runs(args, heads, data, read_table(test_path, "conll")):
        sentences = [group for _, group in table.groupby("id", sort=False)]
        truth, predicted = [list(s["true_label"]) for s in sentences], [list(s["label"]) for s in sentences]
        rows.append({**row, "chunk_f1_strict": round(100 * f1_score(truth, predicted, mode="strict", scheme=IOB2), 2),
                     "chunk_f1_conlleval": round(100 * metrics["test"]["entities"]["f1"], 2)})
    table = pd.DataFrame(rows)
    summary = table.groupby("head", sort=False).agg(
        chunk_f1=("chunk_f1_strict", "mean"), chunk_f1_sd=("chunk_f1_strict", "std"), accuracy=("test_accuracy", "mean"),
        seconds_per_epoch=("seconds_per_epoch", "mean"), train_seconds=("train_seconds", "mean"),
        sentences_per_second=("predicted_sentences_per_second", "mean"), runs=("seed", "count")).round(2)
    print()
    print(table.to_string(index=False))
    print()
    print(summary.to_string())
    goals = {}
    for pos, goal in CHUNK_GOALS.items():
        chosen = summary[[name.endswith("+pos") == pos for name in summary.index]]
        if len(chosen):
            goals["with POS" if pos else "without POS"] = {
                "goal": goal, "best": float(chosen["chunk_f1"].max()),
                "met": bool(chosen["chunk_f1"].max() >= goal and table["train_seconds"].max() <= LIMIT_MINUTES * 60)}
    print(f"\nCoNLL-2000, {args.arch} {args.units}, goals within {LIMIT_MINUTES} min of training: " + "; ".join(
        f"{name}: best chunk F1 {g['best']:.2f} against {g['goal']}, {'met' if g['met'] else 'NOT met'}"
        for name, g in goals.items()) + " (published: BiLSTM-CRF with features 94.46, shared task best 93.48)")
    write(RESULTS / (args.output or "tagging_conll2000.json"), {
        "data": "CoNLL-2000 chunking, official train.txt/test.txt, 10% of train for validation", "arch": args.arch,
        "embeddings": args.embeddings and Path(args.embeddings).name, "epochs": args.epochs or "default",
        "units": args.units, "char_encoder": args.char_encoder, "runs": rows,
        "summary": summary.reset_index().to_dict(orient="records"), "goals": goals})


def write(path, result):
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
