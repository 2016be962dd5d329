"""Metrics and plots of a trained classifier."""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_metrics(y_true, y_pred, classes):
    """Accuracy, macro F1 (over the classes present in truth or prediction), per-class scores and the confusion matrix.

    Examples
    --------
    >>> m = classification_metrics([0, 1, 1], [0, 1, 0], ["neg", "pos"])
    >>> round(m["accuracy"], 3), m["n"]
    (0.667, 3)
    """
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # over the classes that occur: a class absent from a small split must not count as F1 0
        "macro_f1": float(f1_score(y_true, y_pred, labels=np.union1d(y_true, y_pred), average="macro", zero_division=0)),
        "n": int(len(y_true)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def plot_learning_curves(history, path=None, best_epoch=None):
    """Loss and accuracy per epoch, training against validation, the kept epoch marked, and, when recorded, the
    gradient norm before clipping (median and largest per epoch) with the share of steps clipped; returns the figure."""
    gradients = "gradient_norm_median" in history
    figure = Figure(figsize=(13.5 if gradients else 9, 3.5), layout="constrained")
    panels = figure.subplots(1, 3 if gradients else 2)
    for axes, metric in zip(panels, ("loss", "accuracy")):
        epochs = np.arange(1, len(history[metric]) + 1)
        axes.plot(epochs, history[metric], marker="o", label="training")
        axes.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        _finish(axes, best_epoch, metric)
    if gradients:
        axes = panels[2]
        epochs = np.arange(1, len(history["gradient_norm_median"]) + 1)
        axes.plot(epochs, history["gradient_norm_median"], marker="o", label="median")
        axes.plot(epochs, history["gradient_norm_max"], marker=".", label="largest")
        axes.set_yscale("log")
        share = axes.twinx()
        share.bar(epochs, history["clipped_share"], color="tab:gray", alpha=0.25, label="share clipped")
        share.set(ylim=(0, 1), ylabel="share of steps clipped")
        _finish(axes, best_epoch, "gradient norm before clipping")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def _finish(axes, best_epoch, title):
    if best_epoch is not None:
        axes.axvline(best_epoch, color="grey", linestyle="--", label=f"kept (epoch {best_epoch})")
    axes.set(xlabel="epoch", ylabel=title, title=title)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend()


def plot_confusion_matrix(matrix, classes, path=None, title="test confusion matrix"):
    """Counts of true (rows) against predicted (columns) classes; returns the figure."""
    matrix = np.asarray(matrix)
    size = max(3.5, 0.6 * len(classes) + 2)
    figure = Figure(figsize=(size, size), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = np.arange(len(classes))
    axes.set(xticks=ticks, yticks=ticks, xticklabels=classes, yticklabels=classes,
             xlabel="predicted", ylabel="true", title=title)
    axes.tick_params(axis="x", rotation=45 if len(classes) > 4 else 0)
    threshold = (matrix.max() + matrix.min()) / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > threshold else "black")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def plot_step_labels(steps, true_labels, predicted_labels, classes, path=None, title="labels per step"):
    """True and predicted class of each step of one series, mistakes shaded; returns the figure.

    A true label the model does not know (a tag unseen in training) gets a row of its own above the classes.
    """
    classes = list(classes) + sorted({str(label) for label in true_labels} - {str(name) for name in classes})
    index = {name: i for i, name in enumerate(classes)}
    true_y = np.array([index[str(label)] for label in true_labels])
    predicted_y = np.array([index[str(label)] for label in predicted_labels])
    figure = Figure(figsize=(10, 1.2 + 0.45 * len(classes)), layout="constrained")
    axes = figure.subplots()
    axes.step(steps, true_y, where="mid", linewidth=3, alpha=0.6, label="true")
    axes.step(steps, predicted_y, where="mid", linewidth=1.2, linestyle="--", label="predicted")
    wrong = true_y != predicted_y
    axes.fill_between(steps, -0.5, len(classes) - 0.5, where=wrong, step="mid", color="red", alpha=0.12,
                      label=f"wrong ({wrong.mean():.1%} of steps)")
    axes.set(yticks=np.arange(len(classes)), yticklabels=classes, ylim=(-0.5, len(classes) - 0.5),
             xlabel="step", title=title)
    axes.legend(loc="upper right", fontsize="small")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def plot_growth(curves, path=None, title="growth of 1 over the test period"):
    """Growth of 1 by date for each column of ``curves`` (a DataFrame indexed by date); returns the figure."""
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    axes = figure.subplots()
    dates = np.asarray(curves.index, dtype="datetime64[ns]")
    for name in curves.columns:
        axes.plot(dates, curves[name].to_numpy(), label=f"{name} ({curves[name].iloc[-1] - 1:+.1%})")
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set(ylabel="value of 1 invested", title=title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.autofmt_xdate()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure
