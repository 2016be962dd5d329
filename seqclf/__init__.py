"""seqclf: turn sequences into labels with recurrent neural networks (Keras 3 / TensorFlow)."""

__version__ = "0.1.0"

from .estimators import SequenceClassifier, load  # noqa: E402

__all__ = ["SequenceClassifier", "load", "__version__"]
