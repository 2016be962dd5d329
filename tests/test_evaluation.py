"""Metrics and the plot helpers: each returns a matplotlib figure that shows what it says."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seqclf.evaluation import (classification_metrics, plot_confusion_matrix, plot_growth, plot_learning_curves,
                               plot_step_labels)


def test_macro_f1_counts_only_classes_that_occur():
    metrics = classification_metrics([0, 0, 1, 1], [0, 0, 1, 0], ["a", "b", "never"])
    assert metrics["accuracy"] == 0.75
    assert metrics["macro_f1"] == np.mean([0.8, 2 / 3])  # "never" is neither true nor predicted
    assert metrics["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_learning_curves_show_both_splits_and_the_kept_epoch(tmp_path):
    history = {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.95], "accuracy": [0.5, 0.6, 0.7],
               "val_accuracy": [0.5, 0.55, 0.54]}
    figure = plot_learning_curves(history, tmp_path / "curves.png", best_epoch=2)
    assert isinstance(figure, Figure) and (tmp_path / "curves.png").stat().st_size > 1000
    loss_axes, accuracy_axes = figure.axes
    assert [line.get_label() for line in loss_axes.get_lines()] == ["training", "validation", "kept (epoch 2)"]
    np.testing.assert_allclose(accuracy_axes.get_lines()[1].get_ydata(), history["val_accuracy"])


def test_confusion_matrix_writes_every_count():
    figure = plot_confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"])
    texts = sorted(text.get_text() for text in figure.axes[0].texts)
    assert texts == ["1", "2", "5", "7"]
    assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == ["neg", "pos"]


def test_step_labels_shade_the_mistakes():
    figure = plot_step_labels(np.arange(4), ["walk", "walk", "run", "run"], ["walk", "run", "run", "run"],
                              ["run", "walk"])
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["true", "predicted", "wrong (25.0% of steps)"]


def test_growth_curves_name_each_final_return():
    curves = pd.DataFrame({"buy and hold": [1.0, 1.1, 1.2], "model": [1.0, 0.9, 0.95]},
                          index=["2024-01-01", "2024-01-02", "2024-01-03"])
    figure = plot_growth(curves)
    assert [line.get_label() for line in figure.axes[0].get_lines()][:2] == ["buy and hold (+20.0%)", "model (-5.0%)"]
