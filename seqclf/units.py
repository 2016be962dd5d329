"""Which hidden units track a feature of the input, and how often the gates saturate (``seqclf cells``).

After Karpathy, Johnson and Fei-Fei (2015), "Visualizing and understanding recurrent networks".
Every recurrent layer is re-run one step at a time (:mod:`seqclf.layer_states`): h_t, for LSTM
cells c_t, and the gate activations. Each unit (a layer's h_t or c_t component, per direction)
is scored against a feature of the input
(:mod:`seqclf.step_features`) over the real steps: Spearman's rho for a numeric feature, the
area under the ROC curve for a boolean one; its strength is |rho| or |2 AUROC - 1|.

Two null baselines say what a strength means: the same architecture freshly initialised
(untrained, seeded), and the trained model against the feature shuffled in blocks (which keeps
the feature's runs, so a slowly varying unit does not match it by chance as easily). The top
unit is then ablated (held at 0 inside its layer's recurrence; a cell state at 0 silences its h
too) and the change of the loss is reported at the steps the feature marks (true, or above its
median) against the other steps.
"""

import html
import json
import logging
import warnings
from dataclasses import dataclass, field

import keras
import numpy as np
from matplotlib.figure import Figure
from scipy.stats import rankdata

from .errors import ConfigError, DataError
from .explain import walk_recurrent
from .inputs import as_frame
from .layer_states import layer_states
from .models.fcn import ConvolutionBranch
from .models.layers import StepAveraging
from .step_features import step_features, step_positions

log = logging.getLogger(__name__)
TOP = 10  # units listed per feature
SHUFFLES = 5  # block shufflings of the feature for the null baseline
SATURATED = (0.1, 0.9)  # a gate below the first or above the second is saturated (Karpathy et al.)
MAX_STEPS = 20000  # real steps read from the data by default
SHADED_STEPS = 600  # steps shown in cells.html and cells.png


@dataclass
class Tracking:
    """How the units relate to one feature."""

    feature: str
    boolean: bool
    measure: str  # "Spearman rho" or "AUROC"
    top: list  # [{"unit", "layer", "state", "index", "score", "strength"}], strongest first
    untrained: dict  # the strongest unit of the freshly initialised model
    shuffled: dict  # the strongest unit's strength against the block-shuffled feature: mean and max of the shufflings
    ablation: dict = None  # the top unit held at 0: mean loss change at marked and at other steps
    values: np.ndarray = field(default=None, repr=False)  # the feature at the shown steps
    activation: np.ndarray = field(default=None, repr=False)  # the top unit at the shown steps


@dataclass
class CellReport:
    """What ``seqclf cells`` found: per feature a :class:`Tracking`, and the gates' saturation per layer."""

    trackings: list
    saturation: list  # [{"layer", "gate", "below", "above", "per_unit_below", "per_unit_above"}]
    steps: list  # the labels of the shown steps (characters, words or step numbers)
    n_steps: int  # real steps scored
    n_sequences: int
    target: str  # what the ablation's loss was measured against

    def to_json(self):
        """The report as JSON (without the shown steps' arrays)."""
        return json.dumps({
            "n_steps": self.n_steps, "n_sequences": self.n_sequences, "ablation_target": self.target,
            "features": [{"feature": t.feature, "boolean": t.boolean, "measure": t.measure, "top": t.top,
                          "untrained": t.untrained, "shuffled": t.shuffled, "ablation": t.ablation}
                         for t in self.trackings],
            "saturation": self.saturation}, indent=2)

    def lines(self):
        """The table ``seqclf cells`` prints."""
        lines = [f"{self.n_steps} real steps of {self.n_sequences} sequences"]
        for t in self.trackings:
            lines.append(f"\nfeature {t.feature} ({t.measure}; strength = "
                         f"{'|2 AUROC - 1|' if t.boolean else '|rho|'})")
            lines.append(f"  {'unit':<28}{'score':>9}{'strength':>10}")
            lines += [f"  {u['unit']:<28}{u['score']:>9.3f}{u['strength']:>10.3f}" for u in t.top]
            lines.append(f"  null: untrained model's strongest {t.untrained['strength']:.3f} ({t.untrained['unit']}); "
                         f"block-shuffled feature {t.shuffled['mean']:.3f} (max {t.shuffled['max']:.3f} of "
                         f"{SHUFFLES})")
            if t.ablation:
                a = t.ablation
                lines.append(f"  ablating {t.top[0]['unit']}: loss {a['marked']:+.4f} at the {a['n_marked']} marked "
                             f"{a['unit_of_loss']}, {a['other']:+.4f} at the {a['n_other']} others")
        if self.saturation:
            lines.append("\ngate saturation (share of steps x units below 0.1 / above 0.9)")
            lines += [f"  {s['layer']:<24}{s['gate']:<8}{s['below']:>7.1%}{s['above']:>8.1%}" for s in self.saturation]
        return lines

    def figure(self):
        """Per feature, the feature and its top unit over the shown steps; then the gates' saturation per unit."""
        rows = len(self.trackings) + bool(self.saturation)
        figure = Figure(figsize=(12, 2.4 * rows), layout="constrained")
        axes = np.atleast_1d(figure.subplots(rows, 1))
        for ax, t in zip(axes, self.trackings):
            ax.plot(t.activation, color="tab:red", lw=1, label=f"{t.top[0]['unit']}")
            ax.set_ylabel("activation")
            twin = ax.twinx()
            twin.plot(t.values, color="tab:gray", lw=1, alpha=0.7, label=t.feature)
            twin.set_ylabel(t.feature)
            ax.set_title(f"{t.feature}: top unit {t.top[0]['unit']} ({t.measure} {t.top[0]['score']:.3f}; untrained "
                         f"{t.untrained['strength']:.3f}, shuffled {t.shuffled['max']:.3f})", fontsize="small")
            ax.set_xlabel("step")
        if self.saturation:
            ax = axes[-1]
            for s in self.saturation:
                ax.scatter(s["per_unit_below"], s["per_unit_above"], s=8, label=f"{s['layer']} {s['gate']}")
            ax.plot([0, 1], [1, 0], color="lightgray", lw=0.8)
            ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="share of steps below 0.1 (left-saturated)",
                   ylabel="share above 0.9", title="gate saturation per unit")
            ax.legend(fontsize="x-small", ncols=2)
        return figure

    def to_html(self):
        """A stand-alone page: the shown steps shaded by each feature's top unit (red positive, blue negative)."""
        sections = []
        for t in self.trackings:
            peak = max(float(np.nanmax(np.abs(t.activation))), 1e-6)
            spans = "".join(_span(step, a / peak, f"{t.feature} {v:g}, activation {a:+.3f}")
                            for step, a, v in zip(self.steps, t.activation, t.values))
            sections.append(f"<h3>{html.escape(t.feature)}: {html.escape(t.top[0]['unit'])} ({t.measure} "
                            f"{t.top[0]['score']:.3f})</h3><div style='font-family: monospace; line-height: 1.7'>"
                            f"{spans}</div>")
        return ("<!doctype html><meta charset='utf-8'><title>seqclf cells</title><body style='font-family: "
                "sans-serif'><p>each step shaded by the activation of the unit that tracks the feature best "
                "(red positive, blue negative; hover for values)</p>" + "".join(sections))

    def _repr_html_(self):
        return self.to_html()


def _span(step, strength, title):
    colour = f"rgba(214,39,40,{strength:.2f})" if strength > 0 else f"rgba(31,119,180,{-strength:.2f})"
    text = html.escape(step).replace("\n", "&#8629;<br>") if len(step) == 1 else html.escape(step) + " "
    return f'<span title="{html.escape(title)}" style="background: {colour}; white-space: pre">{text}</span>'


def find_units(estimator, X, features, max_steps=MAX_STEPS, top=TOP, seed=0):
    """Score every unit of the fitted ``estimator``'s recurrent layers against ``features`` (names, see
    :mod:`seqclf.step_features`) over the steps of ``X`` (a table as ``seqclf predict`` reads it); a
    :class:`CellReport`.

    Examples
    --------
    >>> text = read_table("input.txt")  # doctest: +SKIP
    >>> report = find_units(load("runs/shakespeare"), text, ["quote", "line-position"])  # doctest: +SKIP
    >>> print("\\n".join(report.lines()))  # doctest: +SKIP
    """
    if not features:
        raise ConfigError("name at least one feature to track (--feature quote, --feature step, ...)")
    adapter, task = estimator.adapter_, estimator.task_
    frame, labeled = read_examples(adapter, X)
    characters = adapter.kind == "chars" or getattr(adapter, "tokens", "word") == "char"
    frame = first_sequences(adapter, frame, max_steps, characters)
    raw = adapter.raw_inputs(frame)
    walk = walk_recurrent(estimator.model_, raw)
    n_steps = walk.mask.shape[1]
    factor = next((layer.factor for layer in walk.core.layers if isinstance(layer, StepAveraging)), 1)
    found = step_features(features, adapter, frame, X, n_steps, factor, characters)
    trained = [states for layer, x, mask in walk.layers for states in layer_states(layer, x, mask)[0]]
    fresh = untrained_copy(walk.core, seed)
    untrained = [states for layer, x, mask in walk_recurrent(estimator.model_, raw, core=fresh).layers
                 for states in layer_states(layer, x, mask)[0]]
    names, activations = _units(trained, walk.mask)
    fresh_names, fresh_activations = _units(untrained, walk.mask)
    targets, target = loss_targets(estimator, adapter, task, frame, labeled, raw)
    rng = np.random.default_rng(seed)
    shown = _shown(walk.mask)
    trackings = []
    for feature in found:
        values = feature.values[walk.mask]
        usable = ~np.isnan(values)
        if len(np.unique(values[usable])) < 2:
            raise DataError(f"feature {feature.name!r} takes a single value over the {int(usable.sum())} steps read; "
                            f"give data where it varies")
        scores = unit_scores(activations[usable], values[usable], feature.boolean)
        strength = _strength(scores, feature.boolean)
        order = np.argsort(-np.nan_to_num(strength, nan=-1))[:top]
        fresh_strength = _strengths(fresh_activations[usable], values[usable], feature.boolean)
        best_fresh = int(np.argmax(np.nan_to_num(fresh_strength, nan=-1)))
        shuffled = [np.nanmax(_strengths(activations[usable], _block_shuffled(values[usable], walk.mask, rng),
                                         feature.boolean)) for _ in range(SHUFFLES)]
        ranking = [{**names[i], "score": float(scores[i]), "strength": float(strength[i])} for i in order]
        tracking = Tracking(
            feature.name, feature.boolean, "AUROC" if feature.boolean else "Spearman rho", ranking,
            {**fresh_names[best_fresh], "strength": float(fresh_strength[best_fresh])},
            {"mean": float(np.mean(shuffled)), "max": float(np.max(shuffled))},
            values=feature.values[shown], activation=activations[:, order[0]][shown[walk.mask]])
        tracking.ablation = _ablation(walk, ranking[0], feature, targets, task.per_step)
        trackings.append(tracking)
    return CellReport(trackings, _saturation(trained, walk.mask), _step_labels(adapter, frame, shown, characters, factor),
                      int(walk.mask.sum()), len(frame), target)


def unit_scores(activations, feature, boolean):
    """Spearman's rho of each column of ``activations`` ``(steps, units)`` with ``feature`` ``(steps,)``, or, for a
    boolean feature, each column's AUROC at telling its true steps from the others (NaN for a constant unit)."""
    ranks = rankdata(activations, axis=0)
    if boolean:
        positive = feature.astype(bool)
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if not n_pos or not n_neg:
            return np.full(activations.shape[1], np.nan)
        auroc = (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        constant = activations.std(axis=0) == 0
        return np.where(constant, np.nan, auroc)
    f = rankdata(feature)
    f, ranks = f - f.mean(), ranks - ranks.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (f @ ranks) / np.sqrt((f @ f) * (ranks * ranks).sum(axis=0))


def _strength(scores, boolean):
    return np.abs(2 * scores - 1) if boolean else np.abs(scores)


def _strengths(activations, feature, boolean):
    return _strength(unit_scores(activations, feature, boolean), boolean)


#: The kinds whose models one input runs through one recurrent stack step by step (a tagger's words and characters,
#: a translator's encoder and decoder do not).
READABLE_KINDS = ("text", "chars", "sensor", "stock")


def read_examples(adapter, X, tool="seqclf cells"):
    """The examples of ``X`` (a table, or texts) with their targets when it has them (labelled), else without."""
    if adapter.kind not in READABLE_KINDS:
        raise ConfigError(f"{tool} reads models of {', '.join(READABLE_KINDS)} data, one input through one recurrent "
                          f"stack; this run's kind is {adapter.kind}")
    X = as_frame(X, None, adapter.input_column(), None)
    try:
        return adapter.prepare(X, "the data", labeled=True), True
    except DataError:
        if adapter.kind == "chars":
            raise
        return adapter.prepare(X, "the data", labeled=False), False


def first_sequences(adapter, frame, max_steps, characters):
    """The first sequences of ``frame`` holding about ``max_steps`` steps."""
    if adapter.kind == "text":
        lengths = [len(step_positions(text, characters)) for text in adapter.texts(frame)]
    elif hasattr(adapter, "lengths"):
        lengths = adapter.lengths(frame)
    else:  # windows of one length (stock)
        lengths = np.full(len(frame), np.shape(adapter.raw_inputs(frame.iloc[:1]))[1])
    lengths = np.asarray(lengths)
    keep = max(1, int(np.searchsorted(np.cumsum(lengths), max_steps, side="right")))
    return frame.iloc[:keep].reset_index(drop=True)


def untrained_copy(core, seed):
    """The same architecture freshly initialised (seeded: this seeds Python, NumPy and Keras globally)."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(core)


def _units(layers, mask):
    """Every unit's activation at the real steps ``(steps, units)`` and its name."""
    names, columns = [], []
    for states in layers:
        for state, values in states.states.items():
            for unit in range(values.shape[-1]):
                names.append({"unit": f"{states.name} {state}{unit}", "layer": states.name, "state": state,
                              "index": unit})
            columns.append(values[mask])
    return names, np.concatenate(columns, axis=1)


def _block_shuffled(values, mask, rng):
    """``values`` (at the real steps, in order) rotated by a random offset, cut into blocks of the median sequence
    length and the blocks permuted: the feature's runs survive, their alignment with the input does not."""
    block = int(np.clip(np.median(mask.sum(axis=1)), 8, 100))
    values = np.roll(values, int(rng.integers(len(values))))
    blocks = [values[i:i + block] for i in range(0, len(values), block)]
    return np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])


def loss_targets(estimator, adapter, task, frame, labeled, raw):
    """The classes the ablation's loss is measured against: the data's own, else the model's predictions."""
    if labeled:
        return task.targets(adapter, frame, "the data"), "the data's labels"
    predicted = np.asarray(estimator.model_.predict(raw, verbose=0)).argmax(axis=-1)
    return predicted, "the model's own predictions (the data has no labels)"


def _ablation(walk, unit, feature, targets, per_step):
    """The mean change of the loss when ``unit`` is held at 0, at the steps (or sequences) ``feature`` marks and the
    others; ``None`` when the model's layers after the unit's cannot run on their own."""
    position = next(i for i, (layer, _, _) in enumerate(walk.layers)
                    if unit["layer"].split()[0] == layer.name)
    layer, x, mask = walk.layers[position]
    after = walk.core.layers[walk.core.layers.index(layer) + 1:]
    following = next(other for other in after  # dropout is off at inference; the convolution branch reads the input
                     if not isinstance(other, (keras.layers.Dropout, ConvolutionBranch)))
    rest = run_from(following.input, walk.core)
    if rest is None:
        log.info("no ablation: the layers after %s read other inputs too", layer.name)
        return None
    direction = 1 if unit["layer"].endswith("backward") else 0
    losses = []
    for ablate in (None, (direction, unit["state"], unit["index"])):
        output = layer_states(layer, x, mask, ablate)[1]
        losses.append(_loss(rest(output, mask), targets))
    change = losses[1] - losses[0]
    values = feature.values if per_step else None
    marked = _marked(feature, walk.mask)
    if not per_step:  # one loss per sequence: marked if the feature marks most of its steps
        marked = (marked & walk.mask).sum(axis=1) > walk.mask.sum(axis=1) / 2
        scored = np.isfinite(change)
    else:
        scored = np.isfinite(change) & walk.mask & ~np.isnan(values)
    return {"marked": float(np.mean(change[scored & marked])) if (scored & marked).any() else float("nan"),
            "other": float(np.mean(change[scored & ~marked])) if (scored & ~marked).any() else float("nan"),
            "n_marked": int((scored & marked).sum()), "n_other": int((scored & ~marked).sum()),
            "unit_of_loss": "steps" if per_step else "sequences", "marked_by": ("true" if feature.boolean else
            "above the median") + ("" if per_step else ", at most steps of the sequence")}


def run_from(tensors, core):
    """``core`` from ``tensors`` (a layer's input in its graph: the values, with the padding mask if it got one) to
    its output, as a function ``(values, mask) -> probabilities``; ``None`` if that part reads other inputs too."""
    tensors = tensors if isinstance(tensors, list) else [tensors]
    if len(tensors) > 2 or (len(tensors) == 2 and tensors[1].dtype != "bool"):
        return None
    try:
        model = keras.Model(tensors, core.output)
    except ValueError:
        return None

    def run(values, mask):
        with warnings.catch_warnings():  # Keras warns that a Functional drops the mask it is given; it uses it
            warnings.simplefilter("ignore", UserWarning)
            return model([values, mask] if len(tensors) == 2 else values)

    return run


def _loss(probabilities, targets):
    """Cross-entropy of ``targets`` (class indices; -1 not scored: NaN) under ``probabilities``."""
    targets = np.asarray(targets)
    probabilities = keras.ops.convert_to_numpy(probabilities)
    picked = np.take_along_axis(probabilities, np.maximum(targets, 0)[..., None], axis=-1)[..., 0]
    return np.where(targets >= 0, -np.log(np.maximum(picked, 1e-12)), np.nan)


def _marked(feature, mask):
    """The steps ``feature`` marks: true, or above its median over the real steps."""
    values = np.nan_to_num(feature.values, nan=-np.inf)
    if feature.boolean:
        return values > 0.5
    return values > np.median(feature.values[mask & ~np.isnan(feature.values)])


def _saturation(layers, mask):
    """Per layer and gate: the share of (real step, unit) pairs below 0.1 and above 0.9, and the same per unit."""
    rows = []
    for states in layers:
        for gate, values in states.gates.items():
            real = values[mask]
            below, above = real < SATURATED[0], real > SATURATED[1]
            rows.append({"layer": states.name, "gate": gate, "below": float(below.mean()), "above": float(above.mean()),
                         "per_unit_below": below.mean(axis=0).round(4).tolist(),
                         "per_unit_above": above.mean(axis=0).round(4).tolist()})
    return rows


def _shown(mask):
    """The real steps of the first sequences, up to :data:`SHADED_STEPS`, as a boolean mask like ``mask``."""
    return mask & (np.cumsum(mask.ravel()).reshape(mask.shape) <= SHADED_STEPS)


def _step_labels(adapter, frame, shown, characters, factor):
    """What each shown step stands for: its character, its word, or its step number."""
    labels = []
    for row in range(shown.shape[0]):
        n = int(shown[row].sum())
        if not n:
            continue
        if adapter.kind == "chars":
            labels += list(frame["input"].iloc[row][:n])
        elif adapter.kind == "text":
            text = adapter.texts(frame.iloc[[row]])[0]
            starts = step_positions(text, characters)
            labels += [text[s] if characters else text[s:].split()[0] for s in starts[:n]]
            labels += ["?"] * (n - min(n, len(starts)))
        else:
            labels += [str(t * factor) for t in np.flatnonzero(shown[row])]  # a model step averages `factor`
    return labels
