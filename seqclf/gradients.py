"""Vanishing and exploding gradients, measured: how much the loss at the output still feels each earlier step.

Backpropagation through time multiplies by the recurrent weights (and the derivative of the
activation) once per step, so dL/dx_t, the gradient of the loss with respect to the recurrent
layer's input at step t, shrinks (or grows) roughly geometrically with the distance between t and
the output; an LSTM's cell path (c_t = f_t * c_{t-1} + ...) lets it through when the forget gate
stays near 1. :func:`gradient_by_distance` computes ||dL/dx_t|| for the first recurrent layer of a
fitted model on given data, where L is the loss of the output read after the last real step (the
sequence's label; for a model with a label per step, the label of the last real step), and
averages it over the sequences at each distance T_real - 1 - t. The distance is that of
backpropagation through time only for one direction and an output read from the last state: a
bidirectional layer also reads the sequence from its start, and mean, max or attention pooling
reads every step directly (the profile says so).
"""

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from .errors import ConfigError, DataError
from .explain import core_of, walk_recurrent
from .models.fcn import ConvolutionBranch
from .models.layers import AdditivePooling, SequencePooling
from .units import loss_targets, read_examples, run_from, untrained_copy

MAX_SEQUENCES = 256


@dataclass
class GradientProfile:
    """The mean norm of dL/dx_t at each distance from the output, over the sequences long enough to have it."""

    distances: np.ndarray  # 0, 1, ...
    mean: np.ndarray
    median: np.ndarray
    sequences: np.ndarray  # how many sequences reach each distance
    layer: str
    target: str
    note: str = ""  # why the distance is not only that of backpropagation through time, if it is not

    def as_dict(self):
        return {"layer": self.layer, "loss_against": self.target, "note": self.note,
                "distance": self.distances.tolist(),
                "mean_norm": self.mean.tolist(), "median_norm": self.median.tolist(),
                "sequences": self.sequences.tolist()}

    def ratio(self, distance):
        """The mean norm at ``distance`` over that at the output (distance 0); NaN beyond the longest sequence."""
        if distance >= len(self.mean) or self.mean[0] == 0:
            return float("nan")
        return float(self.mean[distance] / self.mean[0])

    def lines(self):
        """What ``seqclf explain --gradients`` prints: the norm at a few distances and its decay."""
        shown = [d for d in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500) if d < len(self.mean)]
        lines = [f"||dL/dx_t|| at the input of {self.layer}, by distance from the output (mean over "
                 f"{int(self.sequences[0])} sequences; loss against {self.target}):"]
        lines += [f"  distance {d:>4}: {self.mean[d]:.3e}  ({self.ratio(d):.2e} of distance 0; "
                  f"{int(self.sequences[d])} sequences)" for d in shown]
        if self.note:
            lines.append(f"  note: {self.note}, so the distance is not only that of backpropagation through time")
        return lines

    def figure(self, others=None):
        """The mean norm against the distance, log scale; ``others``: ``{name: profile}`` drawn beside it."""
        figure = Figure(figsize=(7, 4), layout="constrained")
        axes = figure.subplots()
        for k, (name, profile) in enumerate({self.layer: self, **(others or {})}.items()):
            axes.plot(profile.distances, profile.mean, label=name, linestyle="-" if k == 0 else "--")
        axes.set_yscale("log")
        axes.set(xlabel="distance from the output (steps)", ylabel="mean ||dL/dx_t||",
                 title="gradient of the loss with respect to each step's input")
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize="small")
        return figure


def gradient_by_distance(estimator, X, max_sequences=MAX_SEQUENCES, untrained=False, seed=0):
    """The :class:`GradientProfile` of the fitted ``estimator`` over the first ``max_sequences`` sequences of ``X``;
    with ``untrained``, of the same architecture freshly initialised (seeded by ``seed``), for comparison.

    Examples
    --------
    >>> profile = gradient_by_distance(load("runs/arrowhead-rnn"), read_table("ArrowHead_TEST.ts"))  # doctest: +SKIP
    >>> profile.ratio(100)  # doctest: +SKIP
    """
    adapter, task = estimator.adapter_, estimator.task_
    frame, labeled = read_examples(adapter, X, "seqclf explain --gradients")
    frame = frame.iloc[:max_sequences].reset_index(drop=True)
    raw = adapter.raw_inputs(frame)
    core = untrained_copy(core_of(estimator.model_), seed) if untrained else None
    walk = walk_recurrent(estimator.model_, raw, core=core)
    layer, x, mask = walk.layers[0]
    if any(isinstance(other, ConvolutionBranch) for other in walk.core.layers):
        raise ConfigError("this model's convolution branch (+fcn/+mfcn) reads the same steps as its recurrent layers, "
                          "so dL/dx_t would mix both paths; gradients by step need a design without it")
    rest = run_from(layer.input, walk.core)
    if rest is None:
        raise ConfigError(f"the layers after {layer.name}'s input read other inputs too; gradients by step need a "
                          f"model whose output depends on that input only")
    mask = np.ones(x.shape[:2], bool) if mask is None else keras.ops.convert_to_numpy(mask).astype(bool)
    targets, target = loss_targets(estimator, adapter, task, frame, labeled, raw)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)  # the last real step (a gap may be masked before it)
    targets = np.asarray(targets)
    if task.per_step:  # the label of the last real step
        targets = targets[np.arange(len(targets)), np.maximum(last, 0)]
    if (targets < 0).any():
        keep = targets >= 0
        x, mask, targets, last = x[keep], mask[keep], targets[keep], last[keep]
    if not len(targets):
        raise DataError("no sequence of the data has a scored output; give labelled data")
    inputs = tf.constant(keras.ops.convert_to_numpy(x))
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        probabilities = rest(inputs, tf.constant(mask))
        if task.per_step:
            probabilities = tf.gather(probabilities, last, axis=1, batch_dims=1)
        picked = tf.gather(probabilities, targets, axis=1, batch_dims=1)
        loss = -tf.reduce_sum(tf.math.log(tf.maximum(picked, 1e-12)))  # each sequence's loss reads its own input only
    norms = tf.norm(tape.gradient(loss, inputs), axis=-1).numpy()
    steps = np.arange(mask.shape[1])
    distance = last[:, None] - steps[None, :]
    real = mask & (distance >= 0)
    longest = int(distance[real].max()) + 1
    by_distance = [norms[real & (distance == d)] for d in range(longest)]
    return GradientProfile(np.arange(longest), np.array([v.mean() if len(v) else np.nan for v in by_distance]),
                           np.array([np.median(v) if len(v) else np.nan for v in by_distance]),  # NaN: a masked gap
                           np.array([len(v) for v in by_distance]),
                           layer.name + (" (untrained)" if untrained else ""), target, _reading(walk))


def _reading(walk):
    """What besides the last state the output reads, in words ("" if nothing)."""
    reads = []
    if isinstance(walk.layers[0][0], keras.layers.Bidirectional):
        reads.append("the bidirectional layer also reads the sequence from its start")
    if any(isinstance(layer, (SequencePooling, AdditivePooling)) for layer in walk.core.layers):
        reads.append("the pooling reads every step directly")
    return "; ".join(reads)
