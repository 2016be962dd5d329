"""The character language model: sequences and targets, causality, loss report, generation, CLI."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from seqclf import SequenceTagger, load
from seqclf.cli import main
from seqclf.data.chars import NextCharacterAdapter
from seqclf.errors import ConfigError
from seqclf.generate import tempered

from .conftest import ROOT
from .test_serving import Server

SHAKESPEARE = ROOT / "datasets" / "tiny_shakespeare_sample.txt"


def text_frame(text):
    return pd.DataFrame({"text": text.split("\n")})


@pytest.fixture(scope="module")
def lm():
    """A one-layer LSTM fitted for two epochs on 20,000 characters of Shakespeare."""
    text = SHAKESPEARE.read_text(encoding="utf-8")[:20_000]
    model = SequenceTagger(kind="chars", arch="lstm", units=(32,), max_length=50, epochs=2, batch_size=32, seed=0)
    return model.fit(text_frame(text))


def test_sequences_are_the_text_cut_and_targets_the_next_character():
    adapter = NextCharacterAdapter(max_length=3)
    examples = adapter.prepare(text_frame("abcab\nca"), "t")
    assert examples["input"].tolist() == ["abc", "ab\n", "c"]
    assert examples["next"].tolist() == ["bca", "b\nc", "a"]
    adapter.fit(examples, "t")
    assert adapter.classes_ == ["\n", "a", "b", "c"]
    assert adapter.targets(examples, "t").tolist() == [[2, 3, 1], [2, 0, 3], [1, -1, -1]]
    ids = adapter.encode(examples)
    assert ids.tolist() == [[3, 4, 5], [3, 4, 2], [5, 0, 0]]  # class index + 2, padding 0
    assert adapter.lookup_(tf.constant(["abc", "c"])).numpy().tolist() == [[3, 4, 5], [5, 0, 0]]  # as the model sees them


def test_held_out_parts_are_the_end_of_the_text():
    adapter = NextCharacterAdapter(max_length=10)
    examples = adapter.prepare(text_frame("x" * 500 + "y" * 100), "t")
    rest, held = adapter.split(examples, 0.1, 0, "t", "val")
    assert held["start"].min() > rest["start"].max() and len(held) == 6
    assert set("".join(held["next"])) <= {"y"}


def test_bidirectional_models_are_refused():
    with pytest.raises(ConfigError, match="one direction"):
        SequenceTagger(kind="chars", arch="bigru", epochs=1).fit(text_frame("abcabc" * 50))


def test_the_model_is_causal(lm):
    """Changing later characters never changes the predictions for earlier ones."""
    first = lm.predict_proba(pd.DataFrame({"text": ["ROMEO: what light"]}))[0]
    second = lm.predict_proba(pd.DataFrame({"text": ["ROMEO: xyz"]}))[0]
    np.testing.assert_allclose(first[:7], second[:7], atol=1e-5)


def test_report_gives_the_cross_entropy_in_nats_and_bits(lm):
    adapter = lm.adapter_
    examples = adapter.prepare(text_frame(SHAKESPEARE.read_text(encoding="utf-8")[20_000:25_000]), "t")
    probabilities = lm.predict_proba(pd.DataFrame({"text": examples["input"]}))
    report = adapter.task.extra_metrics(adapter, examples, probabilities)["cross_entropy"]
    assert report["characters"] == 4999
    assert report["bits_per_char"] == pytest.approx(report["nats_per_char"] / math.log(2))
    assert 1.0 < report["nats_per_char"] < math.log(len(adapter.classes_)) + 0.5  # learnt something, not garbage


def test_generation_is_reproducible_and_respects_the_temperature(lm):
    assert lm.generate("ROMEO:", 60, 0.8, seed=3) == lm.generate("ROMEO:", 60, 0.8, seed=3)
    assert lm.generate("ROMEO:", 60, 0.8, seed=3) != lm.generate("ROMEO:", 60, 0.8, seed=4)
    assert set(lm.generate("ROMEO:", 60, 1.0, seed=0)) <= set(lm.classes_)

    def entropy(text):
        counts = np.array(list(pd.Series(list(text)).value_counts()))
        p = counts / counts.sum()
        return float(-(p * np.log(p)).sum())
    cold = np.mean([entropy(lm.generate("ROMEO:", 200, 0.2, seed=s)) for s in range(3)])
    hot = np.mean([entropy(lm.generate("ROMEO:", 200, 1.5, seed=s)) for s in range(3)])
    assert cold < hot


def test_tempered_distributions_lose_entropy_as_the_temperature_falls():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    entropies = [float(-(q * np.log(q)).sum()) for q in (tempered(p, t) for t in (2.0, 1.0, 0.5, 0.1))]
    assert entropies == sorted(entropies, reverse=True)
    np.testing.assert_allclose(tempered(p, 1.0), p)


def test_cli_next_char_run_generates_and_refuses_unknown_prime_characters(tmp_path):
    text = tmp_path / "input.txt"
    text.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:12_000], encoding="utf-8")
    run = tmp_path / "run"
    fitted = CliRunner().invoke(main, ["fit", "--task", "next-char", str(text), "--units", "16", "--epochs", "1",
                                       "--max-length", "40", "--out", str(run), "--verbose", "0"])
    assert fitted.exit_code == 0, fitted.output
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["arch"] == "lstm" and config["model"]["label_smoothing"] == 0.0
    assert "\n" in load(run).classes_  # labels.txt keeps the newline class
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val"]["cross_entropy"]["nats_per_char"] > 0 and not (run / "test_predictions.csv").exists()
    assert metrics["test"]["cross_entropy"]["characters"] == metrics["test"]["n"]
    generated = CliRunner().invoke(main, ["generate", str(run), "--prime", "ROMEO:", "--length", "80", "--seed", "1"])
    assert generated.exit_code == 0 and generated.output.startswith("ROMEO:")
    assert len(generated.output) == len("ROMEO:") + 80 + 1  # and echo's newline
    refused = CliRunner().invoke(main, ["generate", str(run), "--prime", "ROMÉO€", "--length", "5"])
    assert refused.exit_code == 2 and "never saw: 'É', '€'" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    server = Server(run, grpc=True)  # the next character after each prefix, over REST and gRPC alike
    try:
        texts = ["ROMEO:", "To be, or not"]
        outputs = server.assert_grpc_equals_rest(config["model"]["export_name"], texts, {"text": texts})
        assert outputs["label"].shape == (2, len(texts[1]))
    finally:
        assert server.stop() == 0


def test_cli_evaluate_prints_the_loss(tmp_path):
    text = tmp_path / "input.txt"
    text.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:6_000], encoding="utf-8")
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["fit", "--task", "next-char", str(text), "--units", "8", "--epochs", "1",
                                     "--out", str(run), "--verbose", "0"]).exit_code == 0
    later = tmp_path / "later.txt"
    later.write_text(SHAKESPEARE.read_text(encoding="utf-8")[6_000:9_000], encoding="utf-8")
    result = CliRunner().invoke(main, ["evaluate", str(run), str(later)])
    assert result.exit_code == 0 and "nats/char" in result.output
    written = json.loads((run / "evaluate-later.json").read_text())
    assert written["cross_entropy"]["characters"] == written["n"] > 2900
