"""seqclf: turn sequences into labels with recurrent neural networks (Keras 3 / TensorFlow)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
