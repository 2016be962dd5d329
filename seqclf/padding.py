"""Padding ragged sequences into rectangular arrays: what the adapters feed the model and the server sends it."""

import numpy as np


def padded(flat, lengths, fill, dtype):
    """The values of ``flat`` laid out as one row per sequence of ``lengths``, ``fill`` after each one's end.

    Examples
    --------
    >>> padded(np.array([1, 2, 3]), np.array([2, 1]), -1, "int64").tolist()
    [[1, 2], [3, -1]]
    """
    rows = np.full((len(lengths), np.max(lengths, initial=1)), fill, dtype=dtype)
    rows[np.arange(rows.shape[1]) < np.asarray(lengths)[:, None]] = flat
    return rows


def nan_padded(sequences, n_channels, dtype="float32"):
    """Stack arrays ``(n_timesteps_i, n_channels)`` into ``(n, max n_timesteps_i, n_channels)``, padding with NaN.

    NaN steps are what the model masks, so this is the padding the exported model expects too.

    Examples
    --------
    >>> nan_padded([np.ones((2, 1)), np.ones((1, 1))], 1)[:, :, 0].tolist()
    [[1.0, 1.0], [1.0, nan]]
    """
    stacked = np.full((len(sequences), max((len(s) for s in sequences), default=1), n_channels), np.nan, dtype=dtype)
    for i, sequence in enumerate(sequences):
        stacked[i, :len(sequence)] = sequence
    return stacked
