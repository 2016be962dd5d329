"""Pretrained word vectors on the movie-review sentences (MR): random embeddings against word2vec, fine-tuned and frozen.

Public vectors (word2vec's GoogleNews, 3.6 GB) cannot be fetched here, so the vectors are made
with what we have: gensim's word2vec (skip-gram, 100 values, window 5, words seen 2+ times,
10 epochs, seed 0) trained per fold on unlabelled sentences: the MR sentences outside the test
fold, the UD English EWT training sentences and the CoNLL-2000 training sentences (WSJ), about
550,000 words, lowercased and split as ``seqclf``'s word tokens are. Kim (2014) reports what
public vectors gave a CNN on MR: 76.1% with random embeddings, 81.0% with static and 81.5%
with fine-tuned word2vec (GoogleNews, 100 billion words).

Protocol: the first ``--folds`` folds of the stratified 10-fold split of
``benchmarks/text_accuracy.py`` (shuffle seed 0); each fold, three ``seqclf fit`` runs with
every other setting at its default: random embeddings (64 values), ``--embeddings`` (fine-tuned),
``--embeddings --freeze-embeddings``.

Run from the project root (needs the ``benchmark`` extra, which brings gensim)::

    python benchmarks/pretrained_vectors.py            # 3 folds, about 15 minutes on 2 cores

Prints a table and writes ``benchmarks/results/pretrained_vectors.json``.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd
from sklearn.model_selection import StratifiedKFold

from seqclf.data.readers import read_table
from seqclf.runs import DataSettings, FitSettings, fit_run
from text_accuracy import MR, movie_reviews

ROOT = Path(__file__).resolve().parent.parent
TAGGING = ROOT.parent / "shared" / "data" / "tagging"
RESULTS = ROOT / "benchmarks" / "results" / "pretrained_vectors.json"
KIM = {"CNN-rand": 76.1, "CNN-static (word2vec)": 81.0, "CNN-non-static (word2vec)": 81.5}
DESIGNS = {"random embeddings": {}, "word2vec, fine-tuned": {"embeddings": True},
           "word2vec, frozen": {"embeddings": True, "freeze_embeddings": True}}


def words(text):
    """Lowercased words without punctuation, as the text adapter's ``lower_and_strip_punctuation`` and split."""
    return re.sub(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']", "", text.lower()).split()


def other_sentences():
    """The training sentences of UD English EWT and CoNLL-2000, as word lists."""
    ewt = read_table(TAGGING / "ud_english_ewt" / "en_ewt-ud-train.conllu")
    conll = read_table(TAGGING / "conll2000" / "train.txt", format="conll")
    return [words(" ".join(tokens)) for frame in (ewt, conll) for tokens in frame["tokens"]]


def train_vectors(sentences, path):
    from gensim.models import Word2Vec

    model = Word2Vec(sentences, vector_size=100, window=5, min_count=2, sg=1, epochs=10, seed=0, workers=1)
    model.wv.save_word2vec_format(str(path))
    return len(model.wv), sum(len(s) for s in sentences)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()
    if not MR.exists():
        sys.exit(f"movie reviews not found at {MR}")
    reviews, others = movie_reviews(), other_sentences()
    splits = StratifiedKFold(n_splits=10, shuffle=True, random_state=0).split(reviews, reviews["label"])
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for fold, (train_index, test_index) in zip(range(args.folds), splits):
            reviews.iloc[train_index].to_csv(scratch / "train.csv", index=False)
            reviews.iloc[test_index].to_csv(scratch / "test.csv", index=False)
            started = time.perf_counter()
            vocabulary, corpus = train_vectors([words(t) for t in reviews["text"].iloc[train_index]] + others,
                                               scratch / "vectors.txt")
            print(f"fold {fold}: word2vec on {corpus:,} words ({vocabulary:,} vectors) in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            for design, options in DESIGNS.items():
                options = {**options, **({"embeddings": str(scratch / "vectors.txt")} if options else {})}
                started = time.perf_counter()
                run = fit_run(DataSettings(str(scratch / "train.csv"), test=str(scratch / "test.csv"), options=options),
                              FitSettings(), out=scratch / f"run-{fold}-{len(rows)}", verbose=0)
                metrics = json.loads((run / "metrics.json").read_text())
                summary = json.loads((run / "config.json").read_text())["data_summary"]
                rows.append({"fold": fold, "design": design, "test_accuracy": round(100 * metrics["test"]["accuracy"], 2),
                             "coverage": (summary.get("embeddings") or {}).get("coverage"),
                             "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
                             "fit_seconds": round(time.perf_counter() - started, 1)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("design", sort=False).agg(mean=("test_accuracy", "mean"), sd=("test_accuracy", "std"),
                                                      fit_seconds=("fit_seconds", "mean")).round(2).reset_index()
    print()
    print(summary.to_string(index=False))
    print(f"\nKim (2014), CNN on MR, 10-fold: {', '.join(f'{k} {v}%' for k, v in KIM.items())}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "MR (Pang & Lee 2005), the first folds of a stratified 10-fold split, shuffle seed 0",
        "vectors": "gensim word2vec skip-gram, 100 values, window 5, min_count 2, 10 epochs, seed 0, per fold on the "
                   "MR sentences outside the test fold + UD EWT train + CoNLL-2000 train",
        "folds": args.folds, "summary": json.loads(summary.to_json(orient="records")), "runs": rows,
        "reference": {f"Kim 2014 {k} (10-fold)": v for k, v in KIM.items()},
    }, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
