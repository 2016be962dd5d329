"""`--tensorboard` / `tensorboard=True`: Keras' TensorBoard callback writes the epochs' scalars, and the run keeps them."""

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import seqclf
from seqclf.cli import main


def scalars(folder):
    """``{tag: [value per epoch]}`` of the TensorBoard event files in ``folder``."""
    found = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return found


def test_a_fit_run_keeps_loss_accuracy_learning_rate_and_gradient_norms_per_epoch(reviews_csv, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["fit", str(reviews_csv), "--tensorboard", "--epochs", "2", "--units", "8",
                                       "--batch-size", "32", "--out", str(out), "--verbose", "0"])
    assert result.exit_code == 0, result.output
    train, validation = scalars(out / "logs" / "train"), scalars(out / "logs" / "validation")
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_gradient_norm_median",
                "epoch_gradient_norm_max", "epoch_clipped_share"):
        assert len(train[tag]) == 2, (tag, train)
    # 24 validation labels are too few to choose an epoch: the rate follows a cosine to 0 over the 2 epochs
    assert train["epoch_learning_rate"] == pytest.approx([5e-4, 0.0], abs=1e-7)
    history = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
    np.testing.assert_allclose(train["epoch_loss"], history["loss"], rtol=1e-5)
    np.testing.assert_allclose(validation["epoch_loss"], history["val_loss"], rtol=1e-5)
    assert not (tmp_path / ".run.logs").exists()  # moved into the run


def test_python_keeps_the_logs_in_a_folder_of_their_own_and_a_saved_run_gets_them(reviews, tmp_path):
    clf = seqclf.SequenceClassifier(units=(4,), epochs=1, batch_size=32, tensorboard=True)
    clf.fit(reviews["text"][:80], reviews["label"][:80])
    assert "epoch_loss" in scalars(clf.tensorboard_dir_ / "train")
    clf.save(tmp_path / "run")
    assert "epoch_loss" in scalars(tmp_path / "run" / "logs" / "validation")
    assert seqclf.SequenceClassifier(units=(4,), epochs=1).fit(reviews["text"][:40], reviews["label"][:40]) \
        .tensorboard_dir_ is None
