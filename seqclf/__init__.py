"""seqclf: turn sequences into labels with recurrent neural networks (Keras 3 / TensorFlow)."""

from .quiet import import_tensorflow_quietly
from .version import __version__

import_tensorflow_quietly()  # before anything else imports it: no start-up notes in a terminal or notebook

__all__ = ["SequenceClassifier", "SequenceTagger", "SequenceTranslator", "load", "tune", "__version__"]


def __getattr__(name):
    # the estimators load on first use
    if name in ("SequenceClassifier", "SequenceTagger", "load"):
        from . import estimators

        return getattr(estimators, name)
    if name == "tune":
        from .tuning import tune

        return tune
    if name == "SequenceTranslator":
        from .translator import SequenceTranslator

        return SequenceTranslator
    raise AttributeError(f"module 'seqclf' has no attribute {name!r}")
