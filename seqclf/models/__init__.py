"""Architectures (the registry), custom layers and the model builders.

Importing this package registers every custom layer and cell with Keras, so that a saved model
loads (in safe mode) whichever of them it uses, whatever else the process has imported.
"""

from . import cells, crf, fcn, layers, seq2seq, string_layers  # noqa: F401
