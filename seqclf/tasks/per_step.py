"""One label per step (many-to-many, same length): the activity at every step of a sensor series.

The model has a softmax at every step on recurrent layers that all return sequences. Targets
hold -1 on padded steps, which the loss, the metrics and the reports leave out; prediction
tables have a row per step, and the server answers each instance with as many steps as it sent.
"""

import numpy as np

from .base import Task, examples


class PerStep(Task):
    """A label for each step of a sequence."""

    name = "many-to-many"
    description = "one label per step (sensor series: --window N cuts them)"
    kinds = ("sensor",)
    per_step = True
    label_rank = 2
    estimator = "seqclf.estimators.SequenceTagger"

    def scored(self, adapter, frame, probabilities, source):
        """The real (unpadded) steps of every sequence, flattened."""
        y_true, y_pred = self.step_targets(adapter, frame, source), probabilities.argmax(axis=-1)
        real = y_true != -1
        return y_true[real], y_pred[real]

    def step_targets(self, adapter, frame, source):
        """Class indices ``(n, T)`` for evaluation, -1 on padding."""
        return adapter.targets(frame, source)

    def prediction_table(self, adapter, frame, probabilities, with_truth=False):
        """A row per real step: id (and window start), step, the kind's step columns (a tagger's token), labels."""
        table = adapter.index(frame)
        lengths = adapter.lengths(frame)
        rows = np.repeat(np.arange(len(frame)), lengths)
        steps = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, "int64")
        table = table.iloc[rows].reset_index(drop=True)
        table["step"] = table.get("start", 0) + steps
        for name, values in adapter.step_columns(frame).items():
            table[name] = values
        return self._labelled(adapter, frame, table, probabilities[rows, steps], with_truth)

    def write_test_reports(self, directory, adapter, frame, probabilities, metrics):
        """Besides the confusion matrix and the prediction table, ``step_labels.png``: the first test series."""
        table = super().write_test_reports(directory, adapter, frame, probabilities, metrics)
        plot_first_series(table, adapter.classes_, directory / "step_labels.png")
        return table

    def confidently_wrong(self, adapter, frame, probabilities, k):
        """The ``k`` sequences whose surest wrong step is surest, with every step's true and predicted label."""
        true, predicted = self.step_targets(adapter, frame, "test"), probabilities.argmax(axis=-1)
        wrong = (true >= 0) & (predicted != true)
        surest = np.where(wrong, probabilities.max(axis=-1), -1.0).max(axis=1) if wrong.size else np.zeros(0)
        chosen = np.flatnonzero(surest >= 0)
        chosen = chosen[np.argsort(-surest[chosen], kind="stable")][:k]
        classes = np.asarray(adapter.classes_, dtype=object)
        return [{**example, "confidence": float(surest[i]), "wrong_steps": int(wrong[i].sum()),
                 "steps": {"true": classes[true[i][true[i] >= 0]].astype(str).tolist(),
                           "predicted": classes[predicted[i][true[i] >= 0]].astype(str).tolist()}}
                for i, example in zip(chosen, examples(adapter, frame, chosen))]

    def score(self, predicted, y, X=None):
        """Accuracy over the real steps: each prediction cut to its sequence's length."""
        hits = [np.asarray(p[:len(t)]).astype(str) == np.asarray(t).astype(str) for p, t in zip(predicted, y)]
        return float(np.concatenate(hits).mean())

    def answer(self, outputs, instances):
        """Each instance gets as many steps as it sent, whatever its batch was padded to."""
        return {key: [row[:len(instance)].tolist() for row, instance in zip(value, instances)]
                for key, value in sorted(outputs.items())}


def plot_first_series(table, classes, path):
    """True against predicted labels over the steps of the first test series (overlapping windows averaged)."""
    from ..evaluation import plot_step_labels

    series = table[table["id"] == table["id"].iloc[0]]
    columns = [f"prob_{name}" for name in classes]
    by_step = series.groupby("step").agg({"true_label": "first", **{c: "mean" for c in columns}})
    predicted = np.asarray(classes, dtype=object)[by_step[columns].to_numpy().argmax(axis=1)]
    plot_step_labels(by_step.index.to_numpy(), by_step["true_label"].to_numpy(), predicted, classes, path,
                     title=f"test series {table['id'].iloc[0]}: true and predicted label per step")
