"""Training and prediction speed: seqclf against a hand-written Keras model and the same model in PyTorch.

The implementations run interleaved (seqclf, Keras, PyTorch, seqclf, ...) for ``--rounds`` rounds (3 by
default), each fit in a fresh process that first probes the machine's speed (a timed 512 x 512 matmul and a timed
Python loop); the tables give each one's median time per epoch with its range, and the median and range of the
ratios of fit times within a round. The three implementations:

- ``seqclf``: ``SequenceClassifier(...).fit`` (the path of ``seqclf fit``) from raw texts or
  arrays, with fixed settings (no early stop), then prediction through the exported
  SavedModel's ``serving_default`` signature, batches of 64 raw inputs, as a server calls it;
- ``keras``: the model a user would write in the keras-io style: ``TextVectorization``
  (padding to the longest sequence), ``Embedding(mask_zero=True)``, ``Bidirectional(GRU)``,
  ``Dense`` softmax, ``model.fit`` / a SavedModel of vectorizer and model for prediction;
- ``pytorch``: the same model in PyTorch (CPU build, 2 threads), batches padded to their own
  longest sequence and packed (``pack_padded_sequence``), prediction under ``inference_mode``.

Each fit is timed whole, from raw input to trained model (vocabulary, tokenising, compiling or
tracing included), with a validation pass per epoch in all three; time per epoch = fit time /
epochs, for 3 and for 10 epochs. Workloads: (a) the movie-review sentences at their real
lengths, vocabulary 20,000, embedding 128, ``bigru`` 64, batch 64; (b) synthetic token
sequences of exactly 100 tokens, ``bigru`` and ``lstm`` 64; (c) synthetic sensor windows, 6
channels x 100 steps, ``bilstm`` 64. Then how seqclf's cost grows with sequence length and data
size (peak memory measured in a fresh process per size).

Run from the project root (needs ``pip install -e ".[benchmark]"``, which brings PyTorch)::

    python benchmarks/speed.py                 # about 90 minutes on 2 cores
    python benchmarks/speed.py --workloads text --no-scaling   # the MR rows, about 20 minutes
    python benchmarks/speed.py --workloads synthetic sensor --no-scaling \
        --output benchmarks/results/speed_synthetic_sensor.json   # rows (b) and (c), kept apart from the MR rows

Prints tables and writes ``benchmarks/results/speed.json``.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import seqclf

ROOT = Path(__file__).resolve().parent.parent
MR = ROOT.parent / "shared" / "data" / "text" / "movie_reviews"
RESULTS = ROOT / "benchmarks" / "results" / "speed.json"
BATCH, UNITS, EMBEDDING, VOCABULARY = 64, 64, 128, 20_000
PREDICT_BATCH = 64


# --- data ------------------------------------------------------------------------------------

def movie_reviews(seed=0):
    """MR as (train, val, test) tables: 80 / 10 / 10, shuffled."""
    frames = [pd.DataFrame({"text": (MR / f"rt-polarity.{label}").read_text(encoding="utf-8").splitlines(),
                            "label": label}) for label in ("pos", "neg")]
    frame = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    n = len(frame)
    return frame[: int(0.8 * n)], frame[int(0.8 * n): int(0.9 * n)], frame[int(0.9 * n):]


def synthetic_tokens(n, length, seed=0):
    """Texts of exactly ``length`` tokens from 5,000 words; the label says whether rare words lead the first half."""
    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.3, size=(n, length)) % 5000
    labels = np.where((ids[:, : length // 2] < 50).sum(axis=1) > np.median((ids[:, : length // 2] < 50).sum(axis=1)),
                      "many", "few")
    texts = [" ".join(f"w{i}" for i in row) for row in ids]
    frame = pd.DataFrame({"text": texts, "label": labels})
    return frame[: int(0.8 * n)], frame[int(0.8 * n): int(0.9 * n)], frame[int(0.9 * n):]


def synthetic_sensor(n, steps=100, channels=6, seed=0):
    """Noisy sines whose frequency (4 classes) differs by class, as arrays ``(n, steps, channels)``."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 4, size=n)
    t = np.linspace(0, 4 * np.pi, steps)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, channels))
    X = np.sin((1 + classes[:, None, None] * 0.5) * t + phase) + rng.normal(0, 0.5, size=(n, steps, channels))
    y = np.array(["a", "b", "c", "d"])[classes]
    cut1, cut2 = int(0.8 * n), int(0.9 * n)
    return (X[:cut1].astype("float32"), y[:cut1]), (X[cut1:cut2].astype("float32"), y[cut1:cut2]), \
        (X[cut2:].astype("float32"), y[cut2:])


# --- seqclf ----------------------------------------------------------------------------------

def run_seqclf(kind, arch, train, val, test, epochs):
    params = dict(arch=arch, units=(UNITS,), epochs=epochs, batch_size=BATCH, patience=epochs, seed=0)
    if kind == "text":
        params.update(embedding_dim=EMBEDDING, max_tokens=VOCABULARY)
        X, y, validation, test_X, test_y = train["text"], train["label"], (val["text"], val["label"]), \
            test["text"].tolist(), test["label"].to_numpy()
    else:
        X, y, validation = list(train[0]), train[1], (list(val[0]), val[1])
        test_X, test_y = test[0], test[1]
    started = time.perf_counter()
    clf = seqclf.SequenceClassifier(**params).fit(X, y, validation_data=validation)
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        clf.save(Path(scratch) / "run")
        export = next((Path(scratch) / "run" / "export").iterdir()) / "1"
        loaded = tf.saved_model.load(str(export))  # kept: the signature needs its variables alive
        signature = loaded.signatures["serving_default"]
        name = next(iter(signature.structured_input_signature[1]))
        dtype = tf.string if kind == "text" else tf.float32
        labels, predict_seconds = predict_in_batches(
            lambda batch: signature(**{name: tf.constant(batch, dtype=dtype)})["label"].numpy(), test_X)
    accuracy = float(np.mean(np.asarray([b.decode() for b in labels]) == np.asarray(test_y)))
    return seconds, predict_seconds, accuracy


def predict_in_batches(call, inputs):
    call(inputs[:PREDICT_BATCH])  # the first call traces; a server pays that once, at start
    started = time.perf_counter()
    outputs = [call(inputs[i:i + PREDICT_BATCH]) for i in range(0, len(inputs), PREDICT_BATCH)]
    return np.concatenate(outputs), time.perf_counter() - started


# --- hand-written Keras ----------------------------------------------------------------------

def recurrent(arch):
    layer = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[arch.removeprefix("bi")](UNITS)
    return keras.layers.Bidirectional(layer) if arch.startswith("bi") else layer


def run_keras(kind, arch, train, val, test, epochs):
    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    if kind == "text":
        classes = sorted(set(train["label"]))
        vectorizer = keras.layers.TextVectorization(max_tokens=VOCABULARY)
        vectorizer.adapt(train["text"].to_numpy())
        encode = lambda frame: vectorizer(frame["text"].to_numpy()).numpy()  # noqa: E731  pads to the longest
        x, x_val = encode(train), encode(val)
        y, y_val = (np.searchsorted(classes, f["label"]) for f in (train, val))
        model = keras.Sequential([keras.Input((None,), dtype="int64"),
                                  keras.layers.Embedding(VOCABULARY, EMBEDDING, mask_zero=True), recurrent(arch),
                                  keras.layers.Dense(len(classes), activation="softmax")])
    else:
        classes = sorted(set(train[1]))
        x, x_val = train[0], val[0]
        y, y_val = (np.searchsorted(classes, labels) for labels in (train[1], val[1]))
        normalize = keras.layers.Normalization()
        normalize.adapt(x)
        model = keras.Sequential([keras.Input((None, x.shape[2])), normalize, recurrent(arch),
                                  keras.layers.Dense(len(classes), activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=BATCH, epochs=epochs, validation_data=(x_val, y_val), verbose=0)
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        if kind == "text":
            text = keras.Input((), dtype="string")
            served = keras.Model(text, model(vectorizer(text)))
            test_X, dtype = test["text"].tolist(), tf.string
        else:
            served, test_X, dtype = model, test[0], tf.float32
        served.export(scratch, format="tf_saved_model", verbose=False)
        loaded = tf.saved_model.load(scratch)  # kept: the endpoint needs its variables alive
        serve = loaded.serve
        indices, predict_seconds = predict_in_batches(
            lambda batch: np.argmax(serve(tf.constant(batch, dtype=dtype)).numpy(), axis=-1), test_X)
    test_y = test["label"].to_numpy() if kind == "text" else test[1]
    return seconds, predict_seconds, float(np.mean(np.asarray(classes)[indices] == test_y))


# --- PyTorch ---------------------------------------------------------------------------------

def run_pytorch(kind, arch, train, val, test, epochs):
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(0)
    torch.set_num_threads(2)
    cell = {"gru": nn.GRU, "lstm": nn.LSTM}[arch.removeprefix("bi")]
    both = arch.startswith("bi")

    class Classifier(nn.Module):
        def __init__(self, n_in, n_classes, vocabulary=None):
            super().__init__()
            self.embedding = nn.Embedding(vocabulary, EMBEDDING, padding_idx=0) if vocabulary else None
            self.rnn = cell(EMBEDDING if vocabulary else n_in, UNITS, batch_first=True, bidirectional=both)
            self.out = nn.Linear(UNITS * (2 if both else 1), n_classes)

        def forward(self, x, lengths):
            x = self.embedding(x) if self.embedding is not None else x
            _, state = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
            h = state[0] if isinstance(state, tuple) else state
            return self.out(torch.cat([h[-2], h[-1]], dim=1) if both else h[-1])

    started = time.perf_counter()
    if kind == "text":
        classes = sorted(set(train["label"]))
        counts = pd.Series([w for t in train["text"] for w in tokens(t)]).value_counts()
        vocabulary = {w: i + 2 for i, w in enumerate(counts.index[: VOCABULARY - 2])}
        encode = lambda texts: [[vocabulary.get(w, 1) for w in tokens(t)] or [1] for t in texts]  # noqa: E731
        x, x_val = encode(train["text"]), encode(val["text"])
        y, y_val = (np.searchsorted(classes, f["label"]) for f in (train, val))
        model = Classifier(None, len(classes), VOCABULARY)
        batch_of = lambda rows, data: pad_ids([data[i] for i in rows])  # noqa: E731
    else:
        classes = sorted(set(train[1]))
        mean, std = train[0].mean(axis=(0, 1)), train[0].std(axis=(0, 1))
        x, x_val = (train[0] - mean) / std, (val[0] - mean) / std
        y, y_val = (np.searchsorted(classes, labels) for labels in (train[1], val[1]))
        model = Classifier(x.shape[2], len(classes))
        batch_of = lambda rows, data: (torch.from_numpy(data[rows]), torch.full((len(rows),), data.shape[1]))  # noqa: E731
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        model.train()
        for rows in np.array_split(rng.permutation(len(y)), max(1, len(y) // BATCH)):
            inputs, lengths = batch_of(rows, x)
            optimizer.zero_grad()
            loss = loss_fn(model(inputs, lengths), torch.from_numpy(y[rows]))
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():  # the validation pass the others make
            for rows in np.array_split(np.arange(len(y_val)), max(1, len(y_val) // BATCH)):
                model(*batch_of(rows, x_val))
    seconds = time.perf_counter() - started

    def predict(batch):
        with torch.inference_mode():
            if kind == "text":
                inputs, lengths = pad_ids(encode(batch))
            else:
                inputs, lengths = torch.from_numpy((batch - mean) / std), torch.full((len(batch),), batch.shape[1])
            return model(inputs, lengths).argmax(dim=1).numpy()
    test_X = test["text"].tolist() if kind == "text" else test[0]
    indices, predict_seconds = predict_in_batches(predict, test_X)
    test_y = test["label"].to_numpy() if kind == "text" else test[1]
    return seconds, predict_seconds, float(np.mean(np.asarray(classes)[indices] == test_y))


def tokens(text):
    """Lowercase words without punctuation, as TextVectorization's default standardisation gives them."""
    return re.sub(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']", "", text.lower()).split()


def pad_ids(rows):
    import torch

    lengths = torch.tensor([len(r) for r in rows])
    padded = torch.zeros((len(rows), int(lengths.max())), dtype=torch.long)
    for i, r in enumerate(rows):
        padded[i, :len(r)] = torch.tensor(r)
    return padded, lengths


# --- the comparison --------------------------------------------------------------------------

RUNNERS = {"seqclf": run_seqclf, "keras": run_keras, "pytorch": run_pytorch}


WORKLOADS = {  # name: (kind, architectures, data)
    "text (MR)": ("text", ("bigru",), movie_reviews),
    "synthetic tokens x100": ("text", ("bigru", "lstm"), lambda: synthetic_tokens(4000, 100)),
    "sensor 6x100": ("sensor", ("bilstm",), lambda: synthetic_sensor(4000)),
}
WORKLOAD_KEYS = {"text": "text (MR)", "synthetic": "synthetic tokens x100", "sensor": "sensor 6x100"}


def machine_probe():
    """How fast the machine is right now: a 512 x 512 float32 matmul in TensorFlow (GFLOP/s) and a pure Python loop
    (million iterations per second), each timed for about half a second."""
    a = tf.random.normal((512, 512))
    tf.linalg.matmul(a, a).numpy()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.5:
        for _ in range(20):
            b = tf.linalg.matmul(a, a)
        b.numpy()
        count += 20
    gflops = 2 * 512 ** 3 * count / (time.perf_counter() - started) / 1e9
    started, n = time.perf_counter(), 3_000_000
    total = 0
    for i in range(n):
        total += i & 7
    return {"matmul_gflops": round(gflops, 1), "python_mloops_per_s": round(n / (time.perf_counter() - started) / 1e6, 2)}


class EpochClock(keras.callbacks.Callback):
    """When the epochs of a ``model.fit`` began and ended (``time.perf_counter``), to tell the time inside ``fit`` but
    outside its epochs (making and dropping the input iterator) from the epochs themselves."""

    def __init__(self):
        super().__init__()
        self.begins, self.ends = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.begins.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


def timing_fit_calls():
    """Wrap ``keras.Model.fit`` (the Keras implementations' and seqclf's) to add an :class:`EpochClock`; return the
    list each call's ``(seconds in fit, seconds before its first epoch, seconds after its last)`` goes to."""
    calls, fit = [], keras.Model.fit

    def timed(model, *args, **kwargs):
        clock = EpochClock()
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [clock]
        started = time.perf_counter()
        try:
            return fit(model, *args, **kwargs)
        finally:
            ended = time.perf_counter()
            if clock.begins:
                calls.append((ended - started, clock.begins[0] - started, ended - clock.ends[-1]))

    keras.Model.fit = timed
    return calls


def fit_child(implementation, workload, arch, epochs):
    """One fit and prediction in this (fresh) process, after a machine probe; prints one JSON line. For the Keras
    implementations it also gives the seconds inside ``model.fit`` before the first epoch and after the last."""
    kind, _, data = WORKLOADS[workload]
    train, val, test = data()
    n_train, n_test = len(train) if kind == "text" else len(train[0]), len(test) if kind == "text" else len(test[0])
    probe = machine_probe()
    calls = timing_fit_calls()
    seconds, predict_seconds, accuracy = RUNNERS[implementation](kind, arch, train, val, test, epochs)
    outside = ({"in_model_fit_seconds": round(calls[0][0], 2), "before_first_epoch_seconds": round(calls[0][1], 2),
                "after_last_epoch_seconds": round(calls[0][2], 2)} if calls else {})
    print(json.dumps({"fit_seconds": round(seconds, 2), "seconds_per_epoch": round(seconds / epochs, 3),
                      "train_samples_per_s": round(n_train * epochs / seconds, 1),
                      "predict_samples_per_s": round(n_test / predict_seconds, 1),
                      "test_accuracy": round(100 * accuracy, 2), **outside, **probe}))


def compare(workload, arch, epoch_counts, rounds):
    """Every implementation interleaved (seqclf, keras, pytorch, seqclf, ...) for ``rounds`` rounds, each fit in a
    fresh process; returns every fit's row."""
    rows = []
    for round_number in range(1, rounds + 1):
        for epochs in epoch_counts:
            for implementation in RUNNERS:
                out = subprocess.run([sys.executable, __file__, "--fit-child", implementation, workload, arch,
                                      str(epochs)], capture_output=True, text=True, check=True,
                                     env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
                rows.append({"workload": workload, "arch": arch, "epochs": epochs, "round": round_number,
                             "implementation": implementation, **json.loads(out.stdout.strip().splitlines()[-1])})
                print(rows[-1], flush=True)
    return rows


def summary(rows):
    """Per workload, architecture and epochs: each implementation's median s/epoch with its range over rounds, and
    the ratios of the others' fit time to seqclf's in the same round (median, lowest, highest)."""
    table = pd.DataFrame(rows)
    summarised = []
    for (workload, arch, epochs), group in table.groupby(["workload", "arch", "epochs"], sort=False):
        by_round = group.pivot(index="round", columns="implementation", values="fit_seconds")
        row = {"workload": workload, "arch": arch, "epochs": epochs, "rounds": len(by_round)}
        for implementation in RUNNERS:
            per_epoch = group[group["implementation"] == implementation]["seconds_per_epoch"]
            row[f"{implementation}_s_per_epoch"] = [round(float(per_epoch.median()), 2), round(float(per_epoch.min()), 2),
                                                    round(float(per_epoch.max()), 2)]
        for other in ("keras", "pytorch"):
            ratio = by_round[other] / by_round["seqclf"]
            row[f"speedup_vs_{other}"] = [round(float(ratio.median()), 2), round(float(ratio.min()), 2),
                                          round(float(ratio.max()), 2)]
        predict = group.pivot(index="round", columns="implementation", values="predict_samples_per_s")
        ratio = predict["seqclf"] / predict["pytorch"]
        row["predict_speedup_vs_pytorch"] = [round(float(ratio.median()), 2), round(float(ratio.min()), 2),
                                             round(float(ratio.max()), 2)]
        row["matmul_gflops"] = [round(float(group["matmul_gflops"].min()), 1), round(float(group["matmul_gflops"].max()), 1)]
        summarised.append(row)
    return summarised


def scaling_child(length, n, epochs):
    """One seqclf fit in this process; prints seconds per epoch and peak RSS (run in a fresh process)."""
    train, val, _ = synthetic_tokens(n, length)
    started = time.perf_counter()
    seqclf.SequenceClassifier(units=(UNITS,), epochs=epochs, batch_size=BATCH, patience=epochs,
                              embedding_dim=EMBEDDING).fit(train["text"], train["label"],
                                                           validation_data=(val["text"], val["label"]))
    seconds = time.perf_counter() - started
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec, so a child would report its parent's peak
    peak = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    print(json.dumps({"seconds_per_epoch": round(seconds / epochs, 3), "peak_rss_mib": round(int(peak.split()[1]) / 1024, 1)}))


def scaling(epochs=3):
    def child(length, n):
        out = subprocess.run([sys.executable, __file__, "--child", str(length), str(n), str(epochs)],
                             capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        return json.loads(out.stdout.strip().splitlines()[-1])
    rows = []
    for length in (25, 50, 100, 200, 400):
        rows.append({"study": "length", "length": length, "examples": 2000, **child(length, 2000)})
        print(rows[-1], flush=True)
    for factor in (1, 4, 16):
        rows.append({"study": "size", "length": 50, "examples": 1250 * factor, **child(50, 1250 * factor)})
        print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--workloads", nargs="+", default=["text", "synthetic", "sensor"])
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--scaling-only", action="store_true", help="measure the growth again, keep the comparison")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every implementation")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes [default: %(default)s]")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fit-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return scaling_child(*args.child)
    if args.fit_child:
        implementation, workload, arch, epochs = args.fit_child
        return fit_child(implementation, workload, arch, int(epochs))
    if args.scaling_only:
        results = json.loads(RESULTS.read_text())
        results["scaling"] = scaling()
        print(pd.DataFrame(results["scaling"]).to_string(index=False))
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        return
    rows = []
    for key in args.workloads:
        workload = WORKLOAD_KEYS[key]
        for arch in WORKLOADS[workload][1]:
            rows += compare(workload, arch, args.epochs, args.rounds)
    summarised = summary(rows)
    print()
    print(pd.DataFrame(summarised).to_string(index=False))
    grown = [] if args.no_scaling else scaling()
    if grown:
        print()
        print(pd.DataFrame(grown).to_string(index=False))
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps({
        "machine": "2 CPU cores, no GPU", "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "settings": {"batch": BATCH, "units": UNITS, "embedding": EMBEDDING, "vocabulary": VOCABULARY,
                     "predict_batch": PREDICT_BATCH, "epochs": args.epochs, "rounds": args.rounds},
        "summary": summarised, "comparison": rows, "scaling": grown,
    }, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
