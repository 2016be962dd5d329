"""The scikit-learn face of ``--task seq2seq``: texts in, texts of another length out."""

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from . import params
from .errors import ConfigError
from .estimators import SequenceClassifier
from .tasks.seq2seq import SequenceToSequence


class SequenceTranslator(SequenceClassifier):
    """Texts to texts of another length: :class:`SequenceClassifier` with the task ``seq2seq`` (an encoder-decoder
    with attention, :mod:`seqclf.models.seq2seq`).

    ``X`` holds source texts, ``y`` one target text each (a source given twice with two targets
    has two references); ``predict`` returns the decoded texts, ``score`` the exact match (right
    if equal to any reference of the source). The kind's settings (``source_tokens``,
    ``target_tokens``, ``decoder``, ``attention``, ``beam_size``, ...) are parameters as for the CLI.

    Examples
    --------
    >>> words = ["cat", "act", "tack", "at", "tac", "cat"] * 8
    >>> phones = ["K AE T", "AE K T", "T AE K", "AE T", "T AE K", "K AE T"] * 8
    >>> g2p = SequenceTranslator(target_tokens="space", units=(8,), epochs=1).fit(words, phones)
    >>> g2p.predict(["cat"]).shape
    (1,)
    """

    def __init__(self, *args, **values):
        super().__init__(*args, **{"task": SequenceToSequence.name, **values})

    __init__.__signature__ = params.signature(params.ESTIMATOR, {"task": SequenceToSequence.name})

    def fit(self, X, y=None, validation_data=None, source="X"):
        """Learn the vocabularies and the model from source texts ``X`` and target texts ``y`` (or a table ``X`` with
        both columns); return ``self``."""
        if y is not None and not isinstance(X, pd.DataFrame):
            X = _pairs(X, y, "X and y")
            y = None
        if isinstance(validation_data, tuple):
            validation_data = _pairs(*validation_data, "validation_data")
        return super().fit(X, y, validation_data, source)

    def fit_examples(self, adapter, frame, val_frame, source="X", backup_dir=None):
        super().fit_examples(adapter, frame, val_frame, source, backup_dir)
        self.classes_ = np.asarray(adapter.classes_, dtype=object)  # the output symbols (and the special ones)
        return self

    def predict(self, X, beam_size=None):
        """The decoded text of each source, ``(n_samples,)`` (``beam_size``: the fitted one unless given)."""
        return np.asarray(self.translate(X, beam_size)["output"], dtype=object)

    def translate(self, X, beam_size=None):
        """Everything decoding gives per source: ``output``, ``score`` (mean log-probability per symbol), ``capped``
        (cut by the length cap), and ``attention`` with the ``source_symbols`` and ``output_symbols`` it aligns."""
        return self.task_.predictions(self.model_, self.adapter_, self._examples(X), beam_size)

    def predict_proba(self, X):
        raise ConfigError("a sequence-to-sequence model gives texts, not class probabilities: use predict (or "
                          "translate, for scores and attention)")

    def score(self, X, y=None, sample_weight=None):
        """Exact match: the share of distinct sources whose output equals one of their references."""
        if y is None and isinstance(X, pd.DataFrame):
            check_is_fitted(self, "model_")
            frame = self.adapter_.prepare(X, "X")
            return self.task_.evaluate(self.adapter_, frame, self.task_.predictions(self.model_, self.adapter_, frame),
                                       "X")["exact_match"]
        return self.task_.score(self.predict(X), y, X)


def _pairs(X, y, source):
    """A source/target table from texts ``X`` and ``y``."""
    if isinstance(X, (str, bytes)) or isinstance(y, (str, bytes)):
        raise ConfigError(f"{source}: X and y must be lists of texts, not single strings; wrap them: [text]")
    X, y = list(X), list(y)
    if len(X) != len(y):
        raise ConfigError(f"{source}: X has {len(X)} sources but y has {len(y)} targets; give one target per source")
    return pd.DataFrame({"source": X, "target": y})
