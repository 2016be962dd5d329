"""What the Python API accepts as ``X`` (and ``y``), turned into the tables the adapters read."""

import numpy as np
import pandas as pd
from scipy import sparse

from .errors import ConfigError


def as_frame(X, y, text_col, label_col):
    """A table from ``X`` and ``y`` (labels, or None): texts go to ``text_col``, number sequences to ``values``."""
    if sparse.issparse(X):
        raise ConfigError("sparse input is not supported: pass a dense array (n_samples, n_timesteps[, n_features])")
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
    elif isinstance(X, (str, bytes)):
        raise ConfigError("X must be a list of texts, not a single string; wrap it: [text]")
    else:
        sequences = numeric_sequences(X)
        if sequences is not None:
            frame = pd.DataFrame({"id": np.arange(1, len(sequences) + 1), "values": sequences})
        else:
            frame = pd.DataFrame({text_col: list(X)})
    if y is not None:
        if len(y) != len(frame):
            raise ConfigError(f"X has {len(frame)} samples but y has {len(y)} labels; give one label (or one array "
                              f"of labels per step) for each sample")
        frame = frame.assign(**{label_col or "label": [np.asarray(v) if np.ndim(v) else v for v in y]})
    return frame


def numeric_sequences(X):
    """``X`` as a list of float32 arrays ``(n_timesteps, n_features)`` if it holds numbers; ``None`` for texts.

    Accepted: a 3-D array, a 2-D array (one feature per step), or a list of 2-D or 1-D arrays
    or nested lists of numbers. Complex numbers, infinities and 1-D arrays of numbers are errors.
    """
    if not isinstance(X, (list, tuple, pd.Series, np.ndarray)) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) and X.dtype.kind == "O" and X.ndim >= 2:
        X = X.astype("float64")  # numbers stored as objects; anything else raises numpy's TypeError
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "fiubc":
        raise ConfigError(f"X is a 1-D array of {X.shape[0]} numbers. Reshape your data: (n_samples, n_timesteps) "
                          f"holds one number per step, (n_samples, n_timesteps, n_features) several")
    if isinstance(X, np.ndarray) and X.ndim >= 2:
        arrays = list(X)
    elif isinstance(X, (list, tuple)) and len(X) and not any(isinstance(x, (str, bytes)) for x in X):
        arrays = [np.asarray(x) for x in X]
        if not all(a.ndim in (1, 2) and a.dtype.kind in "fiubc" for a in arrays):
            return None
    else:
        return None
    if any(a.dtype.kind == "c" for a in arrays):
        raise ConfigError("complex numbers are not supported; pass real values (for example their absolute value)")
    arrays = [a.astype("float32") for a in arrays]
    if any(np.isinf(a).any() for a in arrays):
        raise ConfigError("X holds infinite values; NaN marks a missing value, infinity is not allowed")
    return arrays

