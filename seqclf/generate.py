"""Sampling text from a character language model: the "one-to-many" use of a trained RNN.

The model was trained to give, at every character, the distribution of the next one. Sampling
feeds it the prime text, draws the next character from the distribution at the last step
(sharpened or flattened by the temperature), appends it and repeats. The model reads the last
``context`` characters each time, as many as it was trained on, so it always sees inputs like
those of training.
"""

import numpy as np
import tensorflow as tf

from .errors import ConfigError


def sample(model, characters, prime, length=500, temperature=1.0, seed=None, context=100):
    """Return ``length`` characters that continue ``prime``.

    Parameters
    ----------
    model : keras.Model
        Texts ``(n,)`` in, next-character probabilities ``(n, n_steps, n_characters)`` out.
    characters : list of str
        The model's classes: the character of each output column.
    prime : str
        The text to continue; every character must be one the model knows.
    temperature : float
        Divides the log-probabilities before sampling: below 1 more conservative (less
        entropy), above 1 more surprising.
    seed : int, optional
        The same seed gives the same text.
    context : int
        Characters the model reads at each step (its training sequence length).

    Examples
    --------
    >>> sample(model, ["a", "b"], prime="ab", length=3, seed=0)  # doctest: +SKIP
    'aba'
    """
    if not prime:
        raise ConfigError("--prime must hold at least one character to continue")
    unknown = sorted(set(prime) - set(characters))
    if unknown:
        raise ConfigError(f"the prime holds characters the model never saw: {', '.join(map(repr, unknown[:10]))}; "
                          f"it knows {len(characters)}: {''.join(characters)!r}")
    if not temperature > 0:
        raise ConfigError(f"--temperature must be > 0. Got {temperature!r} instead.")
    if length < 0:
        raise ConfigError(f"--length must be >= 0. Got {length!r} instead.")
    rng = np.random.default_rng(seed)
    last_step = tf.function(lambda texts: model(texts, training=False)[0, -1],  # traced once, not per character
                            input_signature=[tf.TensorSpec((1,), tf.string)])
    text = prime
    for _ in range(length):
        probabilities = last_step(tf.constant([text[-context:]])).numpy().astype("float64")
        text += characters[rng.choice(len(characters), p=tempered(probabilities, temperature))]
    return text[len(prime):]


def tempered(probabilities, temperature):
    """``probabilities`` raised to ``1 / temperature`` and normalised (a softmax of log p / T).

    Examples
    --------
    >>> tempered(np.array([0.2, 0.8]), 0.5).round(3).tolist()
    [0.059, 0.941]
    """
    logits = np.log(np.maximum(probabilities, 1e-12)) / temperature
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()
