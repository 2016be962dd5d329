"""A look inside a trained model: attention weights and hidden-unit activations per step.

In the spirit of Karpathy, Johnson and Fei-Fei (2015), "Visualizing and understanding
recurrent networks": colour each step of one input by how much the attention pooling weighs
it, and show the activations of the most active units of the last recurrent layer at every
step. The model is run layer by layer on the encoded input, with the padding mask passed on
explicitly; a last layer that returns only its final state is re-run as a copy that returns
every step (same weights), which is what the model computed on the way to that state.
"""

import html
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from .errors import ConfigError
from .inputs import as_frame
from .models.fcn import ConvolutionBranch, DimensionShuffle
from .models.kernels import RandomKernelFeatures
from .models.layers import AdditivePooling, MissingValueMask, SequencePooling, StepAveraging

TOP_UNITS = 8


@dataclass
class Explanation:
    """What the model saw and did at each step of one input."""

    steps: list  # a label per step: the token, or the step number
    attention: np.ndarray  # (n_steps,) weights summing to 1, or None without attention pooling
    activations: np.ndarray  # (n_steps, n_units) of the last recurrent layer
    label: str
    probabilities: dict

    def top_units(self, k=TOP_UNITS):
        """The ``k`` units with the largest mean absolute activation, most active first."""
        return np.argsort(-np.abs(self.activations).mean(axis=0))[:k]

    def figure(self, k=TOP_UNITS):
        """Attention per step (if any) above a heat map of the most active units; returns the figure."""
        units = self.top_units(k)
        rows = 2 if self.attention is not None else 1
        width = min(24, max(8, 0.35 * len(self.steps) + 2))
        figure = Figure(figsize=(width, 1.2 + 0.35 * len(units) + (1.4 if rows == 2 else 0)), layout="constrained")
        axes = figure.subplots(rows, 1, sharex=True, squeeze=False,
                               height_ratios=[1, max(2, 0.35 * len(units))][-rows:])[:, 0]
        ticks = np.arange(len(self.steps))
        if self.attention is not None:
            axes[0].bar(ticks, self.attention, color="tab:orange")
            axes[0].set(ylabel="attention", title=f"predicted {self.label} ({self.probabilities[self.label]:.1%})")
        image = axes[-1].imshow(self.activations[:, units].T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1,
                                interpolation="nearest")
        axes[-1].set(yticks=np.arange(len(units)), yticklabels=[f"unit {u}" for u in units],
                     xticks=ticks, xlabel="step")
        axes[-1].set_xticklabels(self.steps, rotation=90 if len(self.steps) > 12 else 0, fontsize="small")
        if self.attention is None:
            axes[-1].set_title(f"predicted {self.label} ({self.probabilities[self.label]:.1%}): "
                               f"the {len(units)} most active units of the last recurrent layer")
        figure.colorbar(image, ax=axes[-1], shrink=0.8, label="activation")
        return figure

    def to_html(self, k=TOP_UNITS):
        """A stand-alone HTML page: each step shaded by its attention weight, then a table of unit activations."""
        weights = self.attention if self.attention is not None else np.zeros(len(self.steps))
        peak = max(float(weights.max()), 1e-12)
        spans = "".join(
            f'<span title="step {i}: attention {w:.3f}" style="background: rgba(255,140,0,{w / peak:.3f}); '
            f'padding: 2px 3px; margin: 1px; border-radius: 3px">{html.escape(str(step))}</span> '
            for i, (step, w) in enumerate(zip(self.steps, weights)))
        units = self.top_units(k)
        header = "".join(f"<th>{html.escape(str(step))}</th>" for step in self.steps)
        cells = "".join(
            "<tr><th>unit {}</th>{}</tr>".format(u, "".join(
                f'<td style="background: {_colour(a)}" title="{a:.3f}">{a:+.2f}</td>' for a in self.activations[:, u]))
            for u in units)
        odds = ", ".join(f"{html.escape(str(name))} {p:.1%}" for name, p in self.probabilities.items())
        note = "shaded by attention weight" if self.attention is not None else "no attention pooling in this model"
        return (f"<!doctype html><meta charset='utf-8'><title>seqclf explain</title>"
                f"<body style='font-family: sans-serif'><h3>predicted {html.escape(str(self.label))} ({odds})</h3>"
                f"<p>steps, {note}:</p><p style='line-height: 2'>{spans}</p>"
                f"<p>activations of the {len(units)} most active units of the last recurrent layer:</p>"
                f"<table style='border-collapse: collapse; font-size: small'><tr><th></th>{header}</tr>{cells}</table>")

    def _repr_html_(self):
        return self.to_html()

    def lines(self):
        """What ``seqclf explain`` prints: the prediction and the most attended steps."""
        lines = [f"predicted {self.label} ({self.probabilities[self.label]:.1%})"]
        if self.attention is not None:
            top = np.argsort(-self.attention)[:5]
            lines.append("most attended steps: " + ", ".join(f"{self.steps[i]} ({self.attention[i]:.2f})" for i in top))
        return lines


@dataclass
class Alignment:
    """An encoder-decoder's attention for one source: a row per output symbol, a column per source symbol (the
    picture of Bahdanau, Cho and Bengio 2015)."""

    weights: np.ndarray  # (output symbols, source symbols); each row sums to 1
    source: list
    output: list  # the output symbols, the end symbol last unless the length cap cut it
    score: float

    def figure(self):
        """The alignment as a grey-scale matrix: source symbols across, output symbols down."""
        figure = Figure(figsize=(max(3, 0.4 * len(self.source) + 1.5), max(2.5, 0.4 * len(self.output) + 1)),
                        layout="constrained")
        axes = figure.subplots()
        axes.imshow(self.weights, cmap="gray_r", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        axes.set_xticks(np.arange(len(self.source)), self.source)
        axes.set_yticks(np.arange(len(self.output)), self.output)
        axes.xaxis.tick_top()
        axes.set(xlabel="source", ylabel="output")
        axes.set_title(f"attention (score {self.score:.3f} per symbol)", fontsize="small")
        return figure

    def to_html(self):
        """A stand-alone HTML page: the alignment as a table shaded by weight."""
        header = "".join(f"<th>{html.escape(s)}</th>" for s in self.source)
        rows = "".join("<tr><th>{}</th>{}</tr>".format(html.escape(out), "".join(
            f'<td title="{w:.3f}" style="background: rgba(0,0,0,{w:.3f}); color: {"white" if w > 0.5 else "black"}">'
            f"{w:.2f}</td>" for w in row)) for out, row in zip(self.output, self.weights))
        return (f"<!doctype html><meta charset='utf-8'><title>seqclf explain</title><body style='font-family: "
                f"sans-serif'><h3>{html.escape(' '.join(self.source))} &rarr; {html.escape(' '.join(self.output))}</h3>"
                f"<p>attention of each output symbol (rows) over the source symbols (columns); score "
                f"{self.score:.3f} per symbol</p><table style='border-collapse: collapse; font-size: small'>"
                f"<tr><th></th>{header}</tr>{rows}</table>")

    def _repr_html_(self):
        return self.to_html()

    def lines(self):
        """What ``seqclf explain`` prints: the output and, for each output symbol, the source symbol it read most."""
        most = [f"{out}<-{self.source[int(np.argmax(row))]}" for out, row in zip(self.output, self.weights)]
        return [f"output {' '.join(self.output[:-1] if self.output[-1:] == ['</s>'] else self.output)} "
                f"(score {self.score:.3f})", "most attended source symbol per output symbol: " + ", ".join(most)]


@dataclass
class Tagging:
    """A tagger's reading of one sentence: the tag it gives each token and how sure it is of every tag there."""

    tokens: list
    tags: list  # the tag given to each token (a CRF's: its Viterbi path)
    probabilities: np.ndarray  # (tokens, tags): softmax per token, or a CRF's marginals p(y_t = k)
    classes: list
    kind: str  # "softmax" or "CRF marginals"

    def figure(self):
        """Tags down, tokens across, shaded by probability; a dot marks the tag given."""
        figure = Figure(figsize=(max(4, 0.5 * len(self.tokens) + 2), max(3, 0.3 * len(self.classes) + 1.2)),
                        layout="constrained")
        axes = figure.subplots()
        image = axes.imshow(self.probabilities.T, cmap="Greens", vmin=0, vmax=1, aspect="auto",
                            interpolation="nearest")
        chosen = [self.classes.index(tag) for tag in self.tags]
        axes.scatter(np.arange(len(self.tokens)), chosen, s=12, color="tab:red", label="tag given")
        axes.set_xticks(np.arange(len(self.tokens)), self.tokens, rotation=90 if len(self.tokens) > 10 else 0)
        axes.set_yticks(np.arange(len(self.classes)), self.classes, fontsize="small")
        axes.set_title(f"{self.kind} per token; the dots: the tags given", fontsize="small")
        figure.colorbar(image, ax=axes, shrink=0.8, label="probability")
        return figure

    def to_html(self):
        """A stand-alone HTML page: each token over its tag, shaded by the tag's probability."""
        cells = "".join(
            f'<td style="background: rgba(44,160,44,{p:.3f}); padding: 3px 6px; text-align: center" '
            f'title="{p:.3f}">{html.escape(token)}<br><small>{html.escape(tag)}</small></td>'
            for token, tag, p in zip(self.tokens, self.tags, self._given()))
        return (f"<!doctype html><meta charset='utf-8'><title>seqclf explain</title><body style='font-family: "
                f"sans-serif'><p>tags given, shaded by their probability ({html.escape(self.kind)}):</p>"
                f"<table style='border-collapse: collapse'><tr>{cells}</tr></table>")

    def _repr_html_(self):
        return self.to_html()

    def _given(self):
        return [float(row[self.classes.index(tag)]) for row, tag in zip(self.probabilities, self.tags)]

    def lines(self):
        """What ``seqclf explain`` prints: each token with its tag and that tag's probability."""
        return [f"tags ({self.kind}): " + " ".join(f"{token}/{tag} ({p:.2f})" for token, tag, p in
                                                   zip(self.tokens, self.tags, self._given()))]


def explain_tags(estimator, X, index=0):
    """The tags a fitted tagger gives ``X[index]``, with each token's probabilities: for a CRF, the marginals of the
    forward-backward algorithm beside the Viterbi path it decodes."""
    from .models.crf import crf_layer

    adapter = estimator.adapter_
    frames = adapter.prepare(as_frame(X, None, adapter.input_column(), None), "X", labeled=False)
    if not 0 <= index < len(frames):
        raise ConfigError(f"row {index} is out of range: the input has {len(frames)} sentences (rows count from 0)")
    frame = frames.iloc[[index]]
    tokens = list(frame[adapter.tokens_col].iloc[0])
    tags = [str(tag) for tag in estimator.predict(frame)[0][:len(tokens)]]
    core, classes = core_of(estimator.model_), [str(c) for c in estimator.classes_]
    crf = crf_layer(core)
    if crf is None:
        return Tagging(tokens, tags, estimator.predict_proba(frame)[0, :len(tokens)], classes, "softmax")
    crf.decoding = False  # the model gives the potentials, as in training
    try:
        potentials = estimator.model_(tf.nest.map_structure(lambda a: tf.constant(a.astype(str)),
                                                            adapter.raw_inputs(frame)), training=False)
    finally:
        crf.decoding = True
    mask = np.ones((1, len(tokens)), "float32")
    posterior = keras.ops.convert_to_numpy(crf.marginals(potentials, mask))[0]
    return Tagging(tokens, tags, posterior, classes, "CRF marginals")


def plot_alignment(alignment, path):
    """Save ``alignment``'s figure as a PNG at ``path``."""
    alignment.figure().savefig(path, dpi=100, format="png")


def explain(estimator, X, index=0):
    """Explain the prediction of a fitted many-to-one ``estimator`` for ``X[index]``.

    Examples
    --------
    >>> view = explain(clf, ["a gripping, funny film"])  # doctest: +SKIP
    >>> view.attention.round(2), view.figure().savefig("explain.png")  # doctest: +SKIP
    """
    if estimator.task_.per_step:
        raise ConfigError(f"explain shows one prediction per sequence; this model's task ({estimator.task_.name}) "
                          f"labels every step")
    adapter = estimator.adapter_
    frames = adapter.prepare(as_frame(X, None, adapter.input_column(), None), "X", labeled=False)
    if not 0 <= index < len(frames):
        raise ConfigError(f"row {index} is out of range: the input has {len(frames)} sequences (rows count from 0)")
    frame = frames.iloc[[index]]
    raw = adapter.raw_inputs(frame)
    attention, activations, mask, encoded = inside(estimator.model_, raw)
    real = mask[0]
    probabilities = estimator.model_.predict(raw, verbose=0)[0]
    classes = [str(c) for c in estimator.classes_]
    return Explanation(
        steps=_step_names(estimator.model_, encoded[0], real), attention=None if attention is None else attention[0, real],
        activations=activations[0, real], label=classes[int(np.argmax(probabilities))],
        probabilities=dict(zip(classes, map(float, probabilities))))


def inside(model, raw):
    """Look inside ``model`` (as ``adapter.wrap`` made it) for the raw inputs ``raw``.

    Returns ``(attention, activations, mask, encoded)``: the attention weights ``(n, T)`` (or
    ``None`` without attention pooling), the last recurrent layer's output at every step
    ``(n, T, units)``, which steps are real (not masked) ``(n, T)``, and the input the core model got
    (token ids for text). The model's own preprocessing layers encode ``raw``, so this works
    for loaded runs too.
    """
    walk = walk_recurrent(model, raw)
    return walk.attention, walk.sequence, walk.mask, walk.encoded


@dataclass
class Walk:
    """A model's core run layer by layer up to its pooling or output: what each recurrent layer read."""

    core: keras.Model
    encoded: np.ndarray  # the input the core got (token ids for text)
    layers: list  # (recurrent layer, its input, the padding mask) in order
    sequence: np.ndarray  # the last recurrent layer's output at every step (n, T, units)
    mask: np.ndarray  # which steps are real (n, T)
    attention: np.ndarray = None  # attention pooling's weights (n, T), if the model pools so


def walk_recurrent(model, raw, core=None):
    """Run the core of ``model`` (as ``adapter.wrap`` made it) on ``raw`` layer by layer, the padding mask passed on
    explicitly, and return the :class:`Walk`; a last layer that returns only its final state is re-run as a copy
    that returns every step (same weights). ``core``: another core to walk, behind ``model``'s preprocessing."""
    own = core_of(model)
    core = core or own
    if any(isinstance(layer, DimensionShuffle) for layer in core.layers):
        raise ConfigError("this model's recurrent layers read the dimension-shuffled series (one step per channel, "
                          "LSTM-FCN's reading), so they have no time steps to show; attention and activations over "
                          "time need a design without +fcn/+mfcn")
    if any(isinstance(layer, RandomKernelFeatures) for layer in core.layers):
        raise ConfigError("this model's output also reads MiniRocket's kernel features of the whole series (+rocket), "
                          "which no step-by-step view shows; attention and activations over time need a design "
                          "without +rocket")
    x = encoded = preprocessed(model, own, raw)
    mask, sequence, attention, layers = None, None, None, []
    for layer in core.layers:
        if isinstance(layer, keras.layers.InputLayer) or isinstance(layer, keras.layers.Dropout):
            continue
        if isinstance(layer, AdditivePooling):
            attention = keras.ops.convert_to_numpy(layer.attention(sequence, mask))
            break
        if isinstance(layer, (SequencePooling, keras.layers.Dense, keras.layers.Concatenate)):
            break
        if isinstance(layer, ConvolutionBranch):  # beside the recurrent layers, not on their way
            continue
        if isinstance(layer, (keras.layers.Embedding, MissingValueMask)):
            mask = layer.compute_mask(x)
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            layers.append((layer, x, mask))
            x = sequence = every_step(layer, x, mask)
        else:
            x = layer(x)
    if sequence is None:
        raise ConfigError("this model has no recurrent layer to look inside")
    sequence = keras.ops.convert_to_numpy(sequence)
    mask = keras.ops.convert_to_numpy(mask).astype(bool) if mask is not None else np.ones(sequence.shape[:2], bool)
    return Walk(core, keras.ops.convert_to_numpy(encoded), layers, sequence, mask, attention)


def preprocessed(model, core, raw):
    """``raw`` through the wrapper's preprocessing layers, up to the ``core`` model: what the core reads."""
    x = keras.ops.convert_to_tensor(raw)
    for layer in model.layers if core is not model else ():
        if layer is core:
            break
        if not isinstance(layer, keras.layers.InputLayer):
            x = layer(x)
    return x


def core_of(model):
    """The classifier inside a model that ``adapter.wrap`` made (or ``model`` itself if it is one)."""
    return next((layer for layer in model.layers if isinstance(layer, keras.Model)), model)


def every_step(layer, x, mask):
    """``layer``'s output at every step for ``x``: its own if it returns sequences, else a same-weights copy's."""
    config = layer.get_config()
    inner = config["layer"]["config"] if isinstance(layer, keras.layers.Bidirectional) else config
    if inner["return_sequences"]:
        return layer(x, mask=mask)
    inner["return_sequences"] = True
    copy = type(layer).from_config(config)
    copy(x, mask=mask)  # builds the weights
    copy.set_weights(layer.get_weights())
    return copy(x, mask=mask)


def _step_names(model, encoded, real):
    """The token of each step (from the model's own vocabulary), or the first input step it stands for."""
    vectorizers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    if vectorizers:
        vocabulary = vectorizers[0].get_vocabulary()
        return [str(vocabulary[i]) for i in encoded[real]]
    factor = next((layer.factor for layer in core_of(model).layers if isinstance(layer, StepAveraging)), 1)
    return [str(i * factor) for i in np.flatnonzero(real)]  # a model step averages `factor` input steps


def _colour(value):
    """Red for positive, blue for negative activations, as the heat map."""
    strength = min(1.0, abs(float(value)))
    return f"rgba(214,39,40,{strength:.2f})" if value > 0 else f"rgba(31,119,180,{strength:.2f})"
