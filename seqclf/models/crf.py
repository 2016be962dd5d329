"""A linear-chain conditional random field over the tags of a sentence (``--head crf``).

The recurrent layers give every step ``t`` a score ``u_t(k)`` per tag ``k`` (the potentials);
the CRF adds a learned score ``A[j, k]`` for tag ``k`` following tag ``j``, and ``s[k]``, ``e[k]``
for starting and ending a sentence with ``k``. A tag sequence ``y`` of a sentence of ``n`` real
steps scores

    score(y) = s[y_1] + sum_t u_t(y_t) + sum_{t>1} A[y_{t-1}, y_t] + e[y_n]

and ``p(y) = exp(score(y)) / Z``. Training minimises ``-log p(y)`` (``log Z`` by the forward
algorithm); decoding takes the best sequence (Viterbi). Padded steps are skipped: the chain
links each real step to the next real one.

Everything is written with ``keras.ops``; ``tests/test_crf.py`` checks it against a NumPy
brute force over every tag sequence of short sentences.
"""

import keras
import numpy as np
from keras import ops

#: The score of a transition ``--constrain-bio`` forbids: low enough that no best path takes it.
FORBIDDEN = -1e4


def _steps(*parts):
    """``parts`` ``(n, T, ...)`` side by side, time first: one tensor to scan over (Keras' TensorFlow ``scan``
    fails on several inputs of unknown length)."""
    return ops.moveaxis(ops.concatenate([ops.cast(p, parts[0].dtype) for p in parts], axis=-1), 1, 0)


def log_likelihood(potentials, tags, mask, transitions, start, end):
    """``log p(y)`` of each sentence, ``(n,)``.

    Parameters
    ----------
    potentials : ``(n, T, K)`` tag scores per step.
    tags : ``(n, T, K)`` one-hot gold tags (rows of padded steps are ignored).
    mask : ``(n, T)``, 1 on real steps; a sentence without any real step scores 0.
    transitions, start, end : ``(K, K)``, ``(K,)``, ``(K,)``.
    """
    mask = ops.cast(mask, potentials.dtype)
    tags = ops.cast(tags, potentials.dtype)
    k = potentials.shape[-1]

    def step(carry, inputs):
        alpha, gold, previous, started = carry
        u, y, real = inputs[:, :k], inputs[:, k:2 * k], inputs[:, 2 * k]
        moved = ops.logsumexp(alpha[:, :, None] + transitions[None], axis=1) + u
        here = ops.where(started[:, None] > 0, moved, start[None] + u)
        link = ops.where(started > 0, ops.sum(ops.matmul(previous, transitions) * y, axis=-1), ops.sum(start * y, -1))
        keep = real[:, None] > 0
        carry = (ops.where(keep, here, alpha), gold + real * (link + ops.sum(u * y, axis=-1)),
                 ops.where(keep, y, previous), ops.maximum(started, real))
        return carry, carry  # Keras' TensorFlow scan wants outputs shaped as the carry

    n = ops.shape(potentials)[0]
    zeros = ops.zeros((n, k), potentials.dtype)
    (alpha, gold, last, started), _ = ops.scan(
        step, (zeros, ops.zeros((n,), potentials.dtype), zeros, ops.zeros((n,), potentials.dtype)),
        _steps(potentials, tags, mask[:, :, None]))
    log_z = ops.logsumexp(alpha + end[None], axis=-1)
    return started * (gold + ops.sum(last * end, axis=-1) - log_z)


def max_marginals(potentials, mask, transitions, start, end):
    """The best score of a tag sequence through tag ``k`` at step ``t``, ``(n, T, K)``.

    Its maximum over ``k`` is the Viterbi score at every real step, so its argmax per step is
    the Viterbi path (the best sequence), with no backtracking.
    """
    ahead, behind = _sweeps(potentials, mask, transitions, start, end, ops.max)
    return ahead + behind


def marginals(potentials, mask, transitions, start, end):
    """``p(y_t = k)`` of every real step by the forward-backward algorithm, ``(n, T, K)``."""
    alpha, beta = _sweeps(potentials, mask, transitions, start, end, ops.logsumexp)
    joint = alpha + beta
    return ops.exp(joint - ops.logsumexp(joint, axis=-1, keepdims=True))


def _sweeps(potentials, mask, transitions, start, end, reduce):
    """The forward and backward recursions with ``reduce`` (``max``: Viterbi's, ``logsumexp``: the forward-backward
    algorithm's), ``(n, T, K)`` each: what comes before each step with its own score, and what follows it."""
    mask = ops.cast(mask, potentials.dtype)

    def forward(carry, inputs):
        before, started = carry
        u, here = inputs[:, :-1], inputs[:, -1]
        moved = reduce(before[:, :, None] + transitions[None], axis=1) + u
        value = ops.where(started[:, None] > 0, moved, start[None] + u)
        carry = (ops.where(here[:, None] > 0, value, before), ops.maximum(started, here))
        return carry, carry  # Keras' TensorFlow scan wants outputs shaped as the carry

    def backward(after, inputs):  # after: the score of what follows a step, per tag of that step
        u, here = inputs[:, :-1], inputs[:, -1]
        before = reduce(transitions[None] + (u + after)[:, None, :], axis=2)
        return ops.where(here[:, None] > 0, before, after), after

    n, k = ops.shape(potentials)[0], potentials.shape[-1]
    steps = _steps(potentials, mask[:, :, None])
    _, (ahead, _) = ops.scan(forward, (ops.zeros((n, k), potentials.dtype), ops.zeros((n,), potentials.dtype)), steps)
    _, behind = ops.scan(backward, ops.broadcast_to(end[None], (n, k)), steps, reverse=True)
    return ops.moveaxis(ahead, 0, 1), ops.moveaxis(behind, 0, 1)


def bio_allowed(tags):
    """Which transitions IOB2 allows, ``(start (K,), transitions (K, K))`` booleans: ``I-X`` only after ``B-X`` or
    ``I-X``, never first.

    Examples
    --------
    >>> first, after = bio_allowed(["B-NP", "I-NP", "O"])
    >>> first.tolist(), after[:, 1].tolist()
    ([True, False, True], [True, True, False])
    """
    inside = [tag[2:] if tag.startswith("I-") else None for tag in tags]
    first = np.array([kind is None for kind in inside])
    after = np.ones((len(tags), len(tags)), dtype=bool)
    for k, kind in enumerate(inside):
        if kind is not None:
            after[:, k] = [previous in (f"B-{kind}", f"I-{kind}") for previous in tags]
    return first, after


def iob2_breaks(tags):
    """Where tag sequences ``tags`` break IOB2 (an ``I-X`` first or after anything but ``B-X``/``I-X``): the first
    ``(sentence index, step)`` of each sentence that does."""
    breaks = []
    for number, sequence in enumerate(tags):
        for step, tag in enumerate(sequence):
            if tag.startswith("I-") and (step == 0 or sequence[step - 1] not in ("B-" + tag[2:], tag)):
                breaks.append((number, step))
                break
    return breaks


def check_bio(tags):
    """The first IOB2 break among tag sequences ``tags``: ``(sentence index, step)``, or ``None``."""
    breaks = iob2_breaks(tags)
    return breaks[0] if breaks else None


@keras.saving.register_keras_serializable(package="seqclf")
class CRF(keras.layers.Layer):
    """The transition scores of a linear-chain CRF over ``n_tags`` tags, on the potentials ``(n, T, n_tags)``.

    In training (``decoding=False``) it returns the potentials unchanged: :class:`CRFLoss` reads
    them with the layer's transition scores. With ``decoding=True`` (set once the model is
    trained) it returns, per step, the max-marginals normalised over the tags (softmax of
    :func:`max_marginals`): their argmax is the Viterbi path, and each row says how much
    better the best sequence through each tag scores than the others.

    ``constrain_bio`` with the tag names ``tags``: transitions IOB2 forbids (:func:`bio_allowed`)
    score :data:`FORBIDDEN` and are never learned.

    Examples
    --------
    >>> crf = CRF(3)
    >>> y = crf(np.zeros((2, 4, 3), "float32"))
    >>> tuple(y.shape), tuple(crf.transitions.shape)
    ((2, 4, 3), (3, 3))
    """

    def __init__(self, n_tags, tags=None, constrain_bio=False, decoding=False, **kwargs):
        super().__init__(**kwargs)
        if constrain_bio and (tags is None or len(tags) != n_tags):
            raise ValueError(f"constrain_bio needs the {n_tags} tag names; got {tags!r}")
        self.n_tags, self.tags, self.constrain_bio, self.decoding = int(n_tags), tags, bool(constrain_bio), decoding
        self.supports_masking = True

    def build(self, input_shape):
        zeros = keras.initializers.Zeros()
        self.transitions = self.add_weight(shape=(self.n_tags, self.n_tags), initializer=zeros, name="transitions")
        self.start = self.add_weight(shape=(self.n_tags,), initializer=zeros, name="start")
        self.end = self.add_weight(shape=(self.n_tags,), initializer=zeros, name="end")
        first, after = bio_allowed(self.tags) if self.constrain_bio else (np.ones(self.n_tags, bool),
                                                                          np.ones((self.n_tags,) * 2, bool))
        self._start_penalty = np.where(first, 0.0, FORBIDDEN).astype("float32")
        self._transition_penalty = np.where(after, 0.0, FORBIDDEN).astype("float32")

    def scores(self):
        """``(transitions, start, end)`` as the chain uses them (forbidden ones included)."""
        return (self.transitions + self._transition_penalty, self.start + self._start_penalty, self.end)

    def call(self, potentials, mask=None):
        if not self.decoding:
            return potentials
        mask = ops.ones(ops.shape(potentials)[:2]) if mask is None else mask
        return ops.softmax(max_marginals(potentials, mask, *self.scores()), axis=-1)

    def log_likelihood(self, potentials, tags, mask):
        return log_likelihood(potentials, tags, mask, *self.scores())

    def marginals(self, potentials, mask):
        return marginals(potentials, mask, *self.scores())

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "n_tags": self.n_tags, "tags": self.tags, "constrain_bio": self.constrain_bio,
                "decoding": self.decoding}


@keras.saving.register_keras_serializable(package="seqclf")
class CRFLoss(keras.losses.Loss):
    """The negative log-likelihood of the gold tags under ``crf``, shared out over each sentence's real steps.

    ``y_true`` is one-hot per step, a row of zeros on padding; ``y_pred`` the potentials. A
    sentence's ``-log p(y)`` is divided among its real steps, so the loss per step (as Keras
    averages it over the real steps) is the negative log-likelihood per token, the same scale
    as the softmax head's cross-entropy. A saved model keeps the loss by name only (a loaded one
    has no layer to read: compile it again with ``CRFLoss(crf_layer(model))`` to train it).
    """

    def __init__(self, crf=None, reduction="sum_over_batch_size", name="crf_negative_log_likelihood"):
        super().__init__(reduction=reduction, name=name)
        self.crf = crf

    def call(self, y_true, y_pred):
        if self.crf is None:
            raise ValueError("this CRFLoss has no CRF layer (it was loaded from a file); compile the model again "
                             "with CRFLoss(crf_layer(model))")
        real = ops.cast(ops.sum(y_true, axis=-1) > 0, y_pred.dtype)
        per_sentence = -self.crf.log_likelihood(y_pred, y_true, real)
        return per_sentence[:, None] * real / ops.maximum(ops.sum(real, axis=-1, keepdims=True), 1.0)


def crf_layer(model):
    """The :class:`CRF` layer of ``model`` (searched in nested models too), or ``None``."""
    for layer in model.layers:
        if isinstance(layer, CRF):
            return layer
        if isinstance(layer, keras.Model):
            found = crf_layer(layer)
            if found is not None:
                return found
    return None


def decoding(model):
    """``model`` with its CRF (if any) switched to decoding, as a trained model predicts; returns ``model``."""
    crf = crf_layer(model)
    if crf is not None:
        crf.decoding = True
    return model
