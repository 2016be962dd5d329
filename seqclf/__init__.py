"""seqclf: turn sequences into labels with recurrent neural networks (Keras 3 / TensorFlow)."""

from .version import __version__

__all__ = ["SequenceClassifier", "SequenceTagger", "SequenceTranslator", "load", "tune", "__version__"]


def __getattr__(name):
    # TensorFlow loads on first use, so that `seqclf --help` and the CLI's log settings come first.
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
