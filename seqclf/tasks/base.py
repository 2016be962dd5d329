"""The task interface: everything seqclf does differently for one kind of prediction.

A :class:`Task` is a stateless object. The kind of data (the adapter) turns tables into
examples, inputs and class indices; the task decides what is predicted from them: one label
per sequence or per step (the model's head), what "auto" means for class weights and label
smoothing, which labels of held-out files are refused or counted, the metrics, the reports
of a run directory, the prediction table, and how the server answers one instance. The
defaults here are those of one label per sequence.
"""

import logging

import numpy as np

from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)


def examples(adapter, frame, rows):
    """The rows ``rows`` of ``frame`` for the report page: ``{"id": ..., "input": ...}`` each (a window's start in its
    id), the input as :func:`seqclf.report.shown_input` shows it."""
    from ..report import shown_input

    chosen = frame.iloc[list(rows)]
    raw = adapter.raw_inputs(chosen)
    raw = next(iter(raw.values())) if isinstance(raw, dict) else raw  # token features: the tokens are shown
    index = adapter.index(frame)  # ids as the prediction table has them
    windows = "start" in index and bool(index["start"].any())
    ids = [" ".join(str(value) for key, value in row.items() if key != "start")  # id; a stock's ticker and date
           + (f" from step {row['start']}" if windows else "") for row in index.iloc[list(rows)].to_dict("records")]
    return [{"id": name, "input": shown_input(value)} for name, value in zip(ids, raw)]


class Task:
    """Base class of the tasks; subclasses set ``name``, ``description`` and ``kinds`` and override what differs.

    Attributes
    ----------
    name : str
        The registry name (``seqclf fit --task NAME``).
    kinds : tuple of str
        The kinds of data it trains on; with one only, ``--kind auto`` means that one.
    per_step : bool
        One label per step (a softmax at every step, no pooling) instead of one per sequence.
    default_arch : str
        The ``--arch`` it uses when none is given (:meth:`arch_for`).
    kind_archs : dict
        ``{kind: arch}``: the ``--arch`` for a kind whose data another design serves better (measured).
    defaults : dict
        What ``auto`` means here for ``class_weight`` and ``label_smoothing`` (over the kind's).
    label_rank : int
        Axes of the exported ``label`` output: 1 per sequence, 2 per step.
    estimator : str
        The estimator class ``seqclf.load`` gives back for its runs, as ``module.Class``.
    own_lengths : tuple of int
        Which encoded inputs are batched at their own length, not the targets' (a translation's source).
    searchable : bool
        Whether ``seqclf tune`` searches it (its trials are scored by validation loss, accuracy and macro F1).
    """

    name = None
    description = ""
    kinds = ()
    per_step = False
    default_arch = "bigru"
    kind_archs = {}
    defaults = {}
    label_rank = 1
    estimator = "seqclf.estimators.SequenceClassifier"
    own_lengths = ()
    searchable = True

    def __repr__(self):
        return f"<task {self.name}>"

    def arch_for(self, kind):
        """The ``--arch`` for ``kind`` data when none is given."""
        return self.kind_archs.get(kind, self.default_arch)

    def read_format(self, path, format):
        """The format to read ``path`` in (``format``: the user's, or ``None`` for its suffix's); as given here."""
        return format

    def check_arch(self, architecture):
        """Raise :class:`~seqclf.errors.ConfigError` for an architecture this task cannot use; all are fine here."""

    def build(self, arch, adapter, units, dropout, recurrent_dropout, pooling, name):
        """The uncompiled model for ``adapter``'s encoded input: a classifier (:func:`~seqclf.models.builders.
        build_classifier`) with a softmax per sequence, or per step."""
        from ..models.builders import build_classifier

        return build_classifier(arch, n_classes=len(adapter.classes_), units=units, dropout=dropout,
                                recurrent_dropout=recurrent_dropout, task=self, pooling=pooling, name=name,
                                **adapter.model_inputs())

    def predictions(self, model, adapter, frame):
        """What the fitted ``model`` (raw input in) gives for the rows of ``frame``: class probabilities here,
        ``(n, n_classes)``, or ``(n, T, n_classes)`` per step. The other results methods take them."""
        from ..prediction import predict_proba

        return predict_proba(model, adapter, frame)

    def export(self, model, adapter, directory):
        """Write the SavedModel: raw input in, ``probabilities`` and ``label`` out."""
        from ..export import export_saved_model

        export_saved_model(model, adapter.classes_, adapter.serving_spec(), directory)

    def serves(self, outputs):
        """Whether a SavedModel signature with ``outputs`` (``{name: TensorSpec}``) is this task's export."""
        return "label" in outputs and outputs["label"].shape.rank == self.label_rank

    # --- labels ------------------------------------------------------------------------------

    def check_held_out(self, adapter, known, held_out):
        """Labels of the held-out frames (``{source: frame}``) outside the class names ``known`` (the training
        data's, checked before training; a loaded model's, before ``seqclf evaluate``) are an error here: a
        classifier cannot predict a class it never saw, and its metrics would not count it."""
        known = set(known)
        for source, frame in held_out.items():
            unseen = sorted(set(adapter.label_strings(frame)) - known)
            if unseen:
                raise DataError(f"{source} has labels the training data does not: {', '.join(map(repr, unseen[:5]))}; "
                                f"the model would know {', '.join(map(repr, sorted(known)))}")

    def targets(self, adapter, frame, source):
        """Class indices for training: ``(n,)`` per sequence."""
        return adapter.targets(frame, source)

    # --- results -----------------------------------------------------------------------------

    def evaluate(self, adapter, frame, probabilities, source):
        """Accuracy, macro F1, per-class scores and the confusion matrix (and the task's own measures)."""
        from ..evaluation import classification_metrics

        y_true, y_pred = self.scored(adapter, frame, probabilities, source)
        return {**classification_metrics(y_true, y_pred, adapter.classes_),
                **self.extra_metrics(adapter, frame, probabilities)}

    def scored(self, adapter, frame, probabilities, source):
        """``(true, predicted)`` class indices of what is scored: one pair per sequence."""
        return adapter.targets(frame, source), probabilities.argmax(axis=-1)

    def extra_metrics(self, adapter, frame, probabilities):
        """Measures beside accuracy and F1 in every evaluation; none here."""
        return {}

    def report_lines(self, metrics):
        """Lines ``seqclf evaluate`` prints after the per-class scores, for the task's own measures; none here."""
        return []

    def headline(self, metrics):
        """One line of an evaluation's main figures (the log of ``seqclf fit``, ``seqclf info``)."""
        return f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f} (n={metrics['n']})"

    def result_lines(self, metrics):
        """What ``seqclf evaluate`` prints first: accuracy, macro F1, n and the per-class scores."""
        return [f"accuracy  {metrics['accuracy']:.4f}", f"macro F1  {metrics['macro_f1']:.4f}",
                f"n         {metrics['n']}"] + [
            f"  {name:<20} precision {s['precision']:.3f}  recall {s['recall']:.3f}  f1 {s['f1']:.3f}  "
            f"support {s['support']}" for name, s in metrics["per_class"].items()]

    def prediction_table(self, adapter, frame, probabilities, with_truth=False):
        """id (and window start), true label, predicted label, one probability per class; a row per sequence."""
        table = adapter.index(frame)
        return self._labelled(adapter, frame, table, probabilities, with_truth)

    def _labelled(self, adapter, frame, table, probabilities, with_truth):
        from ..data.columns import label_strings

        if with_truth:
            table["true_label"] = label_strings(adapter.raw_labels(frame)).to_numpy()
        table["label"] = np.asarray(adapter.classes_, dtype=object)[probabilities.argmax(axis=1)]
        for i, name in enumerate(adapter.classes_):
            table[f"prob_{name}"] = probabilities[:, i].round(6)
        return table

    def write_test_reports(self, directory, adapter, frame, probabilities, metrics):
        """The test reports of a run directory: the confusion matrix and the prediction table."""
        from ..evaluation import plot_confusion_matrix

        plot_confusion_matrix(metrics["test"]["confusion_matrix"], adapter.classes_, directory / "confusion_matrix.png",
                              title="test confusion matrix" + (", per step" if self.per_step else ""))
        table = self.prediction_table(adapter, frame, probabilities, with_truth=True)
        table.to_csv(directory / "test_predictions.csv", index=False)
        return table

    def confidently_wrong(self, adapter, frame, probabilities, k):
        """The ``k`` examples of ``frame`` predicted wrong with the highest probability, surest first, for the report
        page (:mod:`seqclf.report`): id, input as shown, true and predicted label, that probability."""
        true, predicted = self.targets(adapter, frame, "test"), probabilities.argmax(axis=-1)
        confidence = probabilities.max(axis=-1)
        wrong = np.flatnonzero(predicted != true)
        chosen = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
        classes = np.asarray(adapter.classes_, dtype=object)
        return [{**example, "true": str(classes[true[i]]), "predicted": str(classes[predicted[i]]),
                 "confidence": float(confidence[i])} for i, example in zip(chosen, examples(adapter, frame, chosen))]

    def score(self, predicted, y, X=None):
        """Accuracy of ``predicted`` labels against ``y`` (the estimator's ``score``; ``X``: the inputs)."""
        return float(np.mean(np.asarray(predicted).astype(str) == np.asarray(y).astype(str)))

    def explain(self, estimator, X, index):
        """A look inside the prediction for ``X[index]`` (:func:`seqclf.explain.explain`): an object with ``figure()``,
        ``to_html()`` and ``lines()``."""
        from ..explain import explain

        return explain(estimator, X, index)

    def generate(self, estimator, prime, length, temperature, seed):
        """Text sampled from the model; only a language model offers it."""
        raise ConfigError(f"generate needs a character language model (--task next-char); this model's task is "
                          f"{self.name}")

    # --- serving -----------------------------------------------------------------------------

    def answer(self, outputs, instances):
        """The signature's ``outputs`` (arrays, a row per instance) as JSON lists, one entry per instance; an
        attention export's ``attention`` and ``steps`` hold each instance's real steps only, whatever its batch
        was padded to."""
        lists = {key: value.tolist() for key, value in sorted(outputs.items())}
        if "steps" in outputs:
            real = outputs["steps"] != ""
            lists |= {key: [row[keep].tolist() for row, keep in zip(outputs[key], real)] for key in ("attention", "steps")}
        return lists
