"""A character language model (``--task next-char``): at every character, the distribution of the next one.

Trained on plain text cut into sequences (``--kind chars``). The loss itself is the measure:
no class weights, no label smoothing, and every evaluation reports the cross-entropy in nats
and bits per character. A bidirectional layer would read the character it must predict, so it
is refused. A run keeps no test prediction table: it would have a row per character.
"""

import math

import numpy as np

from ..errors import ConfigError
from .per_step import PerStep


class NextCharacter(PerStep):
    """The next character at every step of a text."""

    name = "next-char"
    description = "a character language model: the next character at every step (--kind chars)"
    kinds = ("chars",)
    default_arch = "lstm"
    defaults = {"class_weight": "none", "label_smoothing": 0.0}

    def check_arch(self, architecture):
        if architecture.bidirectional:
            raise ConfigError(f"{architecture.spec!r} reads the text backwards too, so it would see the character it "
                              f"must predict; a language model needs one direction: lstm, gru, rnn, ...")

    def generate(self, estimator, prime, length, temperature, seed):
        """``length`` characters sampled after ``prime`` (see :func:`seqclf.generate.sample`)."""
        from ..generate import sample

        return sample(estimator.model_, list(estimator.adapter_.classes_), prime, length, temperature, seed,
                      estimator.adapter_.length)

    def check_held_out(self, adapter, known, held_out):
        """Characters training never saw are not scored (counted, with a warning, when scoring)."""

    def extra_metrics(self, adapter, frame, probabilities):
        """Cross-entropy of the true next characters, in nats and bits per character (characters unseen in
        training are not scored, and counted)."""
        ids = adapter.next_ids(frame)
        y = np.maximum(ids, -1)
        real = y >= 0
        rows, steps = np.nonzero(real)
        nats = float(-np.mean(np.log(np.maximum(probabilities[rows, steps, y[real]], 1e-12))))
        return {"cross_entropy": {"nats_per_char": nats, "bits_per_char": nats / math.log(2),
                                  "characters": int(real.sum()),
                                  "unscored_unseen_characters": int((ids == -2).sum())}}

    def report_lines(self, metrics):
        loss = metrics["cross_entropy"]
        return [f"loss      {loss['nats_per_char']:.4f} nats/char ({loss['bits_per_char']:.4f} bits)"]

    def confidently_wrong(self, adapter, frame, probabilities, k):
        """None: a next character is wrong at most characters of any text, and the report lists no characters."""
        return []

    def write_test_reports(self, directory, adapter, frame, probabilities, metrics):
        """The confusion matrix only: the test predictions would have a row per character."""
        from ..evaluation import plot_confusion_matrix

        plot_confusion_matrix(metrics["test"]["confusion_matrix"], adapter.classes_, directory / "confusion_matrix.png",
                              title="test confusion matrix, per step")
