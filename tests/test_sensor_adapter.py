"""The sensor adapter: long tables, windows, group splits, normalisation, masking, per-step labels."""

import numpy as np
import pandas as pd
import pytest

from seqclf.data.sensor import SensorAdapter
from seqclf.data.splits import group_split
from seqclf.errors import ConfigError, DataError
from seqclf.models.builders import build_classifier


def long_table(lengths=(10, 7), labels=("walk", "run"), channels=2):
    """One row per step; series ``s`` has ``lengths[s]`` steps with values ``100 * s + step``."""
    rows = []
    for s, (n, label) in enumerate(zip(lengths, labels), start=1):
        for step in range(n):
            rows.append({"subject": s, "time": step, **{f"c{c}": 100.0 * s + step + c for c in range(channels)},
                         "label": label})
    return pd.DataFrame(rows)


def test_long_table_becomes_one_example_per_series_in_time_order():
    table = long_table().sample(frac=1.0, random_state=0)  # rows shuffled: the time column restores the order
    examples = SensorAdapter().prepare(table, "t")
    assert examples["id"].tolist() == [1, 2] or examples["id"].tolist() == [2, 1]
    first = examples.set_index("id").loc[1]
    assert first["values"].shape == (10, 2)
    np.testing.assert_array_equal(first["values"][:, 0], 100.0 + np.arange(10))
    assert first["label"] == "walk"


@pytest.mark.parametrize("window, stride, expected_starts", [
    (4, None, [0, 4]),          # 10 steps: windows at 0 and 4; the last 2 steps fill no window
    (4, 3, [0, 3, 6]),          # 6 + 4 = 10: the last window ends exactly at the edge
    (10, 1, [0]),
])
def test_window_arithmetic(window, stride, expected_starts):
    examples = SensorAdapter(window=window, stride=stride).prepare(long_table(lengths=(10, 3)), "t")
    # series 2 has 3 steps, shorter than every window here: left out
    assert examples["start"].tolist() == expected_starts
    assert set(examples["id"]) == {1}
    assert all(v.shape == (window, 2) for v in examples["values"])
    assert examples["values"].iloc[-1][0, 0] == 100.0 + expected_starts[-1]


def test_window_labels_majority_and_last():
    table = long_table(lengths=(6,), labels=("a",))
    table["label"] = list("aabbba")
    majority = SensorAdapter(window=3, stride=3).prepare(table, "t")
    last = SensorAdapter(window=3, stride=3, window_label="last").prepare(table, "t")
    assert majority["label"].tolist() == ["a", "b"]
    assert last["label"].tolist() == ["b", "a"]


def test_changing_labels_need_a_window_or_many_to_many():
    table = long_table(lengths=(6, 6))
    table.loc[3, "label"] = "run"
    with pytest.raises(DataError, match="labels change within series 1.*--task many-to-many"):
        SensorAdapter().prepare(table, "t")
    steps = SensorAdapter(task="many-to-many").prepare(table, "t")
    assert steps["label"].iloc[0].tolist() == ["walk", "walk", "walk", "run", "walk", "walk"]


def test_group_split_never_puts_one_series_on_both_sides():
    table = long_table(lengths=(20,) * 12, labels=["a", "b", "c"] * 4)
    adapter = SensorAdapter(window=5, stride=2)
    examples = adapter.prepare(table, "t")
    rest, held = group_split(examples, adapter.split_labels(examples), adapter.groups(examples), 0.25, 0, "t", "test")
    assert set(rest["id"]).isdisjoint(held["id"])
    assert held["id"].nunique() == 3 and len(rest) + len(held) == len(examples)
    assert sorted(held["label"].unique()) == ["a", "b", "c"]  # stratified by series


def test_normalisation_is_learned_from_the_training_split_only():
    adapter = SensorAdapter()
    examples = adapter.prepare(long_table(lengths=(10, 10, 10), labels=("a", "b", "a")), "t")
    adapter.fit(examples.iloc[:2], "t")
    train_steps = np.concatenate(examples["values"].iloc[:2].to_numpy())
    np.testing.assert_allclose(adapter.mean_, train_steps.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(adapter.variance_, train_steps.var(axis=0), rtol=1e-5)
    model = adapter.wrap(build_classifier("gru", n_classes=2, units=(3,), **adapter.model_inputs()))
    layer = model.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(layer.mean), adapter.mean_, rtol=1e-6)


@pytest.mark.parametrize("task", ["many-to-one", "many-to-many"])
@pytest.mark.parametrize("arch", ["gru", "bilstm", "lstm+fcn", "bigru+mfcn"])
def test_padding_changes_nothing_and_a_gap_is_read_as_a_step_of_means(arch, task):
    model = build_classifier(arch, n_classes=3, units=(5,), n_features=2, task=task)
    x = np.random.default_rng(0).normal(size=(1, 6, 2)).astype("float32")
    padded = np.concatenate([x, np.full((1, 9, 2), np.nan, "float32")], axis=1)
    batch = np.concatenate([padded, np.random.default_rng(1).normal(size=(1, 15, 2)).astype("float32")])
    short, long_ = model(x).numpy(), model(batch).numpy()[:1]
    np.testing.assert_allclose(short, long_[:, :6] if task == "many-to-many" else long_, rtol=1e-5, atol=1e-6)
    gap = np.concatenate([x[:, :3], np.full((1, 1, 2), np.nan, "float32"), x[:, 3:]], axis=1)
    with_gap = model(gap).numpy()
    assert np.isfinite(with_gap).all()  # a step with no value is never a NaN output
    if "fcn" not in arch:  # the recurrent layers read it as a step of zeros (channel means after normalisation), as
        # cuDNN needs right-padded masks (RightPaddedMask); a convolution branch's pooling skips it instead
        np.testing.assert_allclose(with_gap, model(np.nan_to_num(gap)).numpy(), rtol=1e-5, atol=1e-6)


def test_per_step_metrics_ignore_padding():
    adapter = SensorAdapter(task="many-to-many")
    table = long_table(lengths=(4, 2), labels=("a", "b"))
    examples = adapter.prepare(table, "t")
    adapter.fit(examples, "t")
    y = adapter.targets(examples, "t")
    assert y.tolist() == [[0, 0, 0, 0], [1, 1, -1, -1]]
    probabilities = np.zeros((2, 4, 2), "float32")
    probabilities[0, :, 0] = probabilities[1, :2, 1] = 1.0
    probabilities[1, 2:, 0] = 1.0  # padded steps predicted wrong: they must not count
    metrics = adapter.task.evaluate(adapter, examples, probabilities, "t")
    assert metrics["n"] == 6 and metrics["accuracy"] == 1.0


@pytest.mark.parametrize("change, message", [
    (lambda t: t, "series with a single time step \\(2\\)"),
    (lambda t: t.assign(c1=np.nan), "channel 'c1' has no values"),
    (lambda t: t.assign(c1=3.0), "channel 'c1' is constant"),
    (lambda t: t.assign(c0=t["c0"].astype(object).where(t.index != 4, "n/a")), "non-numeric value 'n/a' in channel 'c0' at data row 5"),
    (lambda t: t.drop(columns="subject"), "could not find the series id column"),
])
def test_bad_sensor_data_gets_one_clear_message(change, message):
    table = change(long_table(lengths=(10, 1)) if "single" in message else long_table())
    adapter = SensorAdapter()
    with pytest.raises(DataError, match=message):
        adapter.fit(adapter.prepare(table, "t"), "t")


def test_inconsistent_channel_counts_and_bad_options():
    nested = pd.DataFrame({"values": [np.zeros((5, 2)), np.zeros((5, 3))], "label": ["a", "b"]})
    with pytest.raises(DataError, match="different channel counts: 2 in series 1, 3 in series 2"):
        SensorAdapter().prepare(nested, "t")
    with pytest.raises(ConfigError, match="--stride needs --window"):
        SensorAdapter(stride=3)
    with pytest.raises(ConfigError, match="'window' parameter must be at least 2"):
        SensorAdapter(window=1)
