import json

import keras
import numpy as np
import pytest

from seqclf import training
from seqclf.training import LengthBuckets, StepAccuracy
from seqclf.errors import ConfigError
from seqclf.models.builders import build_classifier
from seqclf.runs import DataSettings, fit_run

from .conftest import TINY


def test_the_same_seed_gives_the_same_metrics(reviews_csv, tmp_path):
    first, second = (
        json.loads((fit_run(DataSettings(str(reviews_csv)), TINY, out=tmp_path / name, verbose=0) / "metrics.json").read_text())
        for name in ("a", "b")
    )
    assert first["test"] == second["test"] and first["val"] == second["val"]
    first_predictions = (tmp_path / "a" / "test_predictions.csv").read_text()
    assert first_predictions == (tmp_path / "b" / "test_predictions.csv").read_text()


def test_balanced_class_weights():
    weights = training.class_weights(np.array([0, 0, 0, 1]), 3, "balanced")
    assert weights == pytest.approx({0: 4 / 6, 1: 2.0, 2: 1.0})
    assert training.class_weights(np.array([0, 1]), 2, "none") is None


def _data(seed=0, n=64):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 20, size=(n, 6))
    return x, (x[:, 0] > 10).astype("int64")


def test_ctrl_c_keeps_the_best_weights_so_far(monkeypatch):
    class InterruptAfterTwoEpochs(keras.callbacks.History):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks, "History", InterruptAfterTwoEpochs)
    training.seed_everything(0)
    model = build_classifier("gru", n_classes=2, units=(4,), vocab_size=20, embedding_dim=3)
    (x, y), (xv, yv) = _data(0), _data(1)
    result = training.train(model, x, y, xv, yv, epochs=10, batch_size=16, learning_rate=0.05, verbose=0)
    assert result.stopped_by == "interrupted" and result.epochs_run == 2
    best = min(result.history["val_loss"])
    loss = model.evaluate(xv, keras.utils.to_categorical(yv, 2), verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(best, rel=1e-4)


def test_early_stopping_restores_the_best_epoch():
    training.seed_everything(0)
    model = build_classifier("gru", n_classes=2, units=(16,), vocab_size=20, embedding_dim=8)
    (x, y), (xv, yv) = _data(0, 32), _data(1, 32)
    yv = 1 - yv  # validation disagrees with training: validation loss rises as training improves
    result = training.train(model, x, y, xv, yv, epochs=30, batch_size=8, learning_rate=0.01, patience=2, verbose=0)
    assert result.stopped_by == "early_stopping"
    assert result.epochs_run == result.best_epoch + 2


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"learning_rate": 0}, {"clipnorm": -1},
                                    {"class_weight": "inverse"}, {"label_smoothing": 1.0}])
def test_nonsense_training_settings(kwargs):
    model = build_classifier("gru", n_classes=2, units=(2,), vocab_size=20, embedding_dim=2)
    x, y = _data()
    with pytest.raises(ConfigError, match=f"'{next(iter(kwargs))}' parameter"):
        training.train(model, x, y, x, y, **kwargs)


class PoisonAt(keras.callbacks.Callback):
    """Set the output layer's weights to NaN when epoch ``epoch`` (from 1) begins: the loss turns NaN there."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            kernel = self.model.get_layer("probabilities").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def test_a_nan_loss_stops_training_and_keeps_the_best_finite_epoch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 2)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 2, 32), 2)
    model = build_classifier("gru", n_classes=2, units=(4,), n_features=2)
    model.compile("adam", "categorical_crossentropy")
    guard = training.NonFiniteLossGuard()
    model.fit(x, y, batch_size=8, validation_data=(x, y), epochs=6, callbacks=[PoisonAt(3), guard], verbose=0)
    assert guard.tripped == (3, 1) and guard.best_epoch in (1, 2)
    for kept, best in zip(model.get_weights(), guard.best_weights):
        np.testing.assert_array_equal(kept, best)
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_a_loss_that_is_nan_from_the_start_is_one_clear_error():
    from seqclf.errors import TrainingError

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 2)).astype("float32")
    x[3, 2, 1] = np.inf  # an extreme value the adapters would refuse, fed to train() directly
    y = rng.integers(0, 2, 32)
    model = build_classifier("gru", n_classes=2, units=(4,), n_features=2)
    # epoch 1's loss stays finite (tanh saturates) but its gradient is NaN: the weights, and epoch 2's loss, are not
    with pytest.raises(TrainingError, match=r"NaN or infinite in epoch 2 \(batch 1\), before any epoch ended with a "
                                            r"finite loss.*--learning-rate 0.001"):
        training.train(model, x, y, x[:8], y[:8], epochs=3, batch_size=32, verbose=0)


def test_length_buckets_cover_every_example_once_and_cut_batches_to_their_longest():
    lengths = np.array([3, 9, 1, 5, 9, 2, 7, 4, 6, 8] * 10)
    y = np.full((len(lengths), 9), -1)
    for i, n in enumerate(lengths):
        y[i, :n] = i % 3
    x = [np.arange(len(lengths) * 9).reshape(-1, 9), np.zeros((len(lengths), 9, 4))]
    buckets = LengthBuckets(x, y, n_classes=3, batch_size=8, weights={0: 1.0, 1: 2.0, 2: 1.0}, seed=0)
    for epoch in range(2):
        seen = []
        for number in range(len(buckets)):
            (ids, chars), targets, weights = buckets[number]
            rows = ids[:, 0] // 9
            seen += rows.tolist()
            assert ids.shape[1] == chars.shape[1] == targets.shape[1] == lengths[rows].max()
            assert ((weights > 0) == (np.arange(ids.shape[1]) < lengths[rows][:, None])).all()  # padding weighs 0
            assert set(weights[weights > 0].tolist()) <= {1.0, 2.0} and (targets.sum(axis=-1) == (weights > 0)).all()
        assert sorted(seen) == list(range(len(lengths)))
        buckets._plan()
    widths = [buckets[n][0][0].shape[1] for n in range(len(buckets))]
    assert np.mean(widths) < 9  # sorted pools: most batches shorter than the longest example
    epochs = [[int(ids.numpy()[0, 0]) for (ids, _), _, _ in buckets.dataset()] for _ in range(2)]
    assert epochs[0] != epochs[1] and len(epochs[0]) == len(buckets)  # each pass is a new epoch order
    # no autotuning thread: dropping an iterator waited for its wake-up, stalling the end of model.fit by seconds
    assert buckets.dataset().options().autotune.enabled is False


def test_batches_of_equal_width_first_do_not_fix_the_width():
    """Keras would take the width of the first two batches as fixed; the declared signature keeps it free."""
    y = np.zeros(6, dtype="int64")
    x = np.array([[1, 1, 0, 0]] * 4 + [[1, 1, 1, 1]] * 2)
    model = keras.Sequential([keras.Input((None,), dtype="int64"), keras.layers.Embedding(3, 2, mask_zero=True),
                              keras.layers.GRU(2), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    model.fit(LengthBuckets(x, y, n_classes=2, batch_size=2).dataset(), epochs=1, shuffle=False, verbose=0)  # widths 2, 2, 4


@pytest.mark.parametrize("sensor", [False, True])
def test_the_training_step_is_traced_once(sensor):
    """The optimizer and the metrics exist before fit: Keras would create them inside the first trace, and TensorFlow
    would then trace the step a second time."""
    training.seed_everything(0)
    (x, y), (xv, yv) = _data(0, 32), _data(1, 16)
    if sensor:
        x, xv = x[..., None].astype("float32") / 20, xv[..., None].astype("float32") / 20
        model = build_classifier("gru", n_classes=2, units=(4,), n_features=1)
    else:
        model = build_classifier("gru", n_classes=2, units=(4,), vocab_size=20, embedding_dim=3)
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)  # runs in Python once per trace
    result = training.train(model, x, y, xv, yv, epochs=2, batch_size=8, verbose=0)
    assert result.epochs_run == 2 and len(traces) == 1
    assert result.history["accuracy"][0] >= 0  # the metric keeps its name


def test_step_accuracy_leaves_padding_out():
    metric = StepAccuracy()
    y_true = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])  # two real steps, then padding
    y_pred = np.array([[[0.9, 0.1], [0.8, 0.2], [0.9, 0.1]]])  # right, wrong, (padding)
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == 0.5


def test_the_warm_up_does_not_stop_but_its_best_epoch_is_kept():
    training.seed_everything(0)
    model = build_classifier("gru", n_classes=2, units=(16,), vocab_size=20, embedding_dim=8)
    (x, y), (xv, yv) = _data(0, 32), _data(1, 32)
    model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy")
    stopper = training.WarmUpEarlyStopping(warmup=6, patience=2, restore_best_weights=True)
    history = model.fit(x, keras.utils.to_categorical(y, 2), validation_data=(xv, keras.utils.to_categorical(1 - yv, 2)),
                        epochs=30, batch_size=8, callbacks=[stopper], verbose=0)
    losses = history.history["val_loss"]  # validation disagrees with training: its loss rises from the start
    assert int(np.argmin(losses)) < 6 and len(losses) == 7  # best in the warm-up; stopped at its first chance
    assert stopper.best_epoch == int(np.argmin(losses))
    kept = model.evaluate(xv, keras.utils.to_categorical(1 - yv, 2), verbose=0)
    assert kept == pytest.approx(min(losses), rel=1e-4)


def test_a_validation_split_too_small_to_choose_trains_every_epoch_annealed_and_keeps_the_last():
    training.seed_everything(0)
    model = build_classifier("gru", n_classes=2, units=(4,), vocab_size=20, embedding_dim=3)
    (x, y), (xv, yv) = _data(0, 32), _data(1, training.loop.MIN_VALIDATION - 1)
    result = training.train(model, x, y, xv, 1 - yv, epochs=6, batch_size=8, verbose=0)
    assert result.budget["keeps"] == "last" and result.epochs_run == result.best_epoch == 6
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)  # the cosine reached 0
    assert training.train(build_classifier("gru", n_classes=2, units=(4,), vocab_size=20, embedding_dim=3), x, y,
                          xv, 1 - yv, epochs=6, batch_size=8, patience=1, verbose=0).budget["keeps"] == "best"


def test_a_plateau_schedule_halves_the_rate_after_each_epoch_without_a_lower_validation_loss():
    training.seed_everything(0)
    model = build_classifier("gru", n_classes=2, units=(4,), vocab_size=20, embedding_dim=3)
    (x, y), (xv, yv) = _data(0, 32), _data(1, 32)
    result = training.train(model, x, y, xv, 1 - yv, epochs=8, batch_size=8, learning_rate=0.01, patience=3,
                            lr_schedule="plateau", verbose=0)
    losses = result.history["val_loss"]  # validation disagrees with training: few epochs lower its loss
    not_lower = sum(loss > min(losses[:i]) - 1e-4 for i, loss in enumerate(losses) if i)  # Keras' min_delta
    assert result.budget["lr_schedule"] == "plateau" and result.budget["keeps"] == "best"
    assert not_lower >= 3 and float(model.optimizer.learning_rate) == pytest.approx(0.01 * 0.5**not_lower, rel=1e-5)
    assert result.best_epoch == int(np.argmin(losses)) + 1


def test_a_cosine_schedule_chosen_with_a_large_validation_split_keeps_the_last_epoch():
    training.seed_everything(0)
    model = build_classifier("gru", n_classes=2, units=(4,), vocab_size=20, embedding_dim=3)
    (x, y), (xv, yv) = _data(0, 32), _data(1, 32)
    result = training.train(model, x, y, xv, yv, epochs=3, batch_size=8, lr_schedule="cosine", verbose=0)
    assert result.budget["keeps"] == "last" and result.epochs_run == result.best_epoch == 3
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ConfigError, match="'lr_schedule' parameter must be one of auto, constant, plateau, cosine"):
        training.train(model, x, y, xv, yv, epochs=1, lr_schedule="step", verbose=0)


def test_a_resumed_plateau_schedule_goes_on_with_its_rate_best_loss_and_wait(tmp_path):
    (x, y), (xv, yv) = _data(0, 32), _data(1, 32)
    fit_data = dict(x=x, y=keras.utils.to_categorical(y, 2), batch_size=8, verbose=0,
                    validation_data=(xv, keras.utils.to_categorical(1 - yv, 2)))  # validation loss rises: halvings

    class Watch(keras.callbacks.Callback):
        """Kill the fit before epoch ``kill_at``; note the rate and the plateau's state as training (re)starts."""

        def __init__(self, plateau, kill_at=None):
            super().__init__()
            self.plateau, self.kill_at, self.at_start = plateau, kill_at, None

        def on_train_begin(self, logs=None):
            self.at_start = (float(self.model.optimizer.learning_rate), self.plateau.best, self.plateau.wait)

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.kill_at:
                raise KeyboardInterrupt

    def fit(kill_at=None):
        training.seed_everything(0)
        model = build_classifier("gru", n_classes=2, units=(4,), vocab_size=20, embedding_dim=3)
        model.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy")
        stopper, guard = training.WarmUpEarlyStopping(patience=9), training.NonFiniteLossGuard()
        history, plateau, backup = keras.callbacks.History(), keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=0), \
            training.EpochBackup(tmp_path)
        watch = Watch(plateau, kill_at)
        callbacks = [plateau, stopper, history, guard, training.TrainingState(tmp_path, stopper, guard, history, plateau),
                     backup, watch]  # the watch last: it sees the state as restored
        try:
            model.fit(**fit_data, epochs=5, initial_epoch=backup.restore(model), callbacks=callbacks)
        except KeyboardInterrupt:
            pass
        return model, plateau, watch

    killed, plateau, _ = fit(kill_at=3)
    rate = float(killed.optimizer.learning_rate)
    assert rate == pytest.approx(0.025) and plateau.best < np.inf  # halved after the third epoch
    _, _, watch = fit()
    assert watch.at_start == (pytest.approx(rate), pytest.approx(plateau.best), plateau.wait)
