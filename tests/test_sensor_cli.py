"""Sensor data through the CLI: .ts with the published split, long tables with windows, per-step output, export."""

import json
import re
from io import StringIO

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from seqclf.cli import main
from seqclf.data.readers import read_table

from .conftest import ROOT

BASIC_MOTIONS = ROOT / "datasets" / "basic_motions_TRAIN.ts"
LONG = ROOT / "datasets" / "basic_motions_long_TRAIN.csv"
TINY = ("--units", "4", "--epochs", "1", "--batch-size", "8", "--verbose", "0")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ts_slice(path, cases_per_class, skip=0):
    """The header of a real .ts file and ``cases_per_class`` of its cases per class (after ``skip``)."""
    lines = BASIC_MOTIONS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lower().startswith("@data")) + 1
    taken, kept = {}, []
    for line in lines[start:]:
        label = line.rsplit(":", 1)[1]
        taken[label] = taken.get(label, 0) + 1
        if skip < taken[label] <= skip + cases_per_class:
            kept.append(line)
    path.write_text("\n".join(lines[:start] + kept) + "\n")
    return path


@pytest.fixture(scope="module")
def ts_run(tmp_path_factory):
    """A one-epoch bilstm on 5 BasicMotions cases per class, tested on 2 others per class."""
    folder = tmp_path_factory.mktemp("ts")
    train, test = ts_slice(folder / "bm_TRAIN.ts", 5), ts_slice(folder / "bm_TEST.ts", 2, skip=5)
    out = folder / "run"
    result = invoke("fit", "--arch", "bilstm", train, "--test", test, "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return out, test


@pytest.fixture(scope="module")
def step_run(tmp_path_factory):
    """A one-epoch many-to-many gru on four long BasicMotions recordings, in windows of 50 steps."""
    folder = tmp_path_factory.mktemp("long")
    data = folder / "long.csv"
    pd.read_csv(LONG).query("recording <= 4").to_csv(data, index=False)
    out = folder / "run"
    result = invoke("fit", "--arch", "gru", "--task", "many-to-many", "--window", "50", "--stride", "25", data,
                    "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    assert "rows: 38 train, 19 validation, 19 test" in result.stderr  # 19 windows per 500-step recording
    return out, data


def test_ts_fit_uses_the_published_split_and_writes_a_complete_run(ts_run):
    run, _ = ts_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["test"]["n"], metrics["val"]["n"]) == (8, 4)  # 20 training cases: one of each class validates
    assert metrics["classes"] == ["Badminton", "Running", "Standing", "Walking"]
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "sensor" and config["adapter"]["channels"] == [f"channel_{i}" for i in range(1, 7)]
    assert len(config["data_summary"]["normalization"]["mean"]) == 6


def test_ts_export_takes_raw_values_of_any_length_and_matches_the_model(ts_run):
    run, test = ts_run
    values = np.stack(read_table(test)["values"].to_numpy())
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    expected = model.predict(values, verbose=0)
    serve = tf.saved_model.load(str(run / "export" / "bm_TRAIN" / "1")).signatures["serving_default"]
    answer = serve(values=tf.constant(values))
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    classes = (run / "labels.txt").read_text().splitlines()
    assert [b.decode() for b in answer["label"].numpy()] == [classes[i] for i in expected.argmax(axis=1)]
    shorter = serve(values=tf.constant(values[:, :37]))["probabilities"].numpy()
    assert shorter.shape == (8, 4) and np.isfinite(shorter).all()


def test_ts_predict_and_evaluate(ts_run, tmp_path):
    run, test = ts_run
    result = invoke("predict", run, test)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(StringIO(result.stdout))
    assert list(table.columns) == ["id", "start", "label", "prob_Badminton", "prob_Running", "prob_Standing",
                                   "prob_Walking"]
    assert table["id"].tolist() == list(range(1, 9))
    evaluated = invoke("evaluate", run, test, "--output", tmp_path / "e.json")
    assert evaluated.exit_code == 0 and json.loads((tmp_path / "e.json").read_text())["n"] == 8


def test_many_to_many_run_reports_per_step_and_predicts_a_long_table(step_run, tmp_path):
    run, data = step_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n"] == 19 * 50  # steps, not windows
    examples = json.loads((run / "report_examples.json").read_text())  # the report's surest mistakes, per step
    assert examples and all(e["id"].split(" from step ")[1].isdigit() and len(e["input"]["series"]) == 50
                            and len(e["steps"]["true"]) == 50 and e["wrong_steps"] > 0 for e in examples)
    assert (run / "step_labels.png").stat().st_size > 10_000
    predictions = pd.read_csv(run / "test_predictions.csv")
    assert list(predictions.columns[:5]) == ["id", "start", "step", "true_label", "label"]
    assert len(predictions) == 19 * 50
    first = predictions[predictions["start"] == 25]
    assert first["step"].tolist() == list(range(25, 75))
    result = invoke("predict", run, data)
    assert result.exit_code == 0
    assert len(pd.read_csv(StringIO(result.stdout))) == 4 * 19 * 50
    serve = tf.saved_model.load(str(run / "export" / "long" / "1")).signatures["serving_default"]
    answer = serve(values=tf.constant(np.random.default_rng(0).normal(size=(2, 80, 6)).astype("float32")))
    assert answer["probabilities"].shape == (2, 80, 4) and answer["label"].shape == (2, 80)


@pytest.mark.parametrize("content, message", [
    ("@problemName x\n@classLabel true a b\n@data\n1,2,3:a\n1,2,x:b\n", "line 5.*'x' is not a number"),
    ("@problemName x\n@classLabel true a b\n@data\n1,2,3:a\n1,2:3,4:b\n", "line 5 has 2 channels"),
    ("@problemName x\n@classLabel true a b\n@data\n1,2,3:a\n1:b\n", "single time step"),
    ("@problemName x\n@classLabel true a b\n@data\n1,2,3:a\n1,inf,2:b\n", "infinite values in series 2"),
])
def test_bad_ts_files_exit_2_with_one_line(tmp_path, content, message):
    path = tmp_path / "bad_TRAIN.ts"
    path.write_text(content)
    result = invoke("fit", path, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "run").exists()


def test_changing_labels_without_window_or_task_exit_2(tmp_path):
    data = tmp_path / "long.csv"
    pd.read_csv(LONG).query("recording <= 4").to_csv(data, index=False)
    result = invoke("fit", data, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 2
    assert "the labels change within series 1, 2, 3, 4; pass --task many-to-many" in result.stderr
    pooled = invoke("fit", data, "--task", "many-to-many", "--pooling", "max", "--out", tmp_path / "run", *TINY)
    assert pooled.exit_code == 2 and "--pooling max does not apply to --task many-to-many" in pooled.stderr


def test_sensor_models_serve_raw_values_of_any_length_over_rest(ts_run, step_run):
    from .test_serving import Server

    run, test = ts_run
    values = np.stack(read_table(test)["values"].to_numpy())
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    server = Server(run, grpc=True)
    try:
        server.assert_grpc_equals_rest("bm_TRAIN", values[:2].tolist(), {"values": values[:2].astype("float32")})
        metadata = server.get("/v1/models/bm_TRAIN/metadata").json()
        inputs = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
        assert inputs["values"]["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in inputs["values"]["tensor_shape"]["dim"]] == ["-1", "-1", "6"]
        instances = [values[0].tolist(), values[1][:40].tolist()]  # different lengths: padded by the server
        answer = server.post("/v1/models/bm_TRAIN:predict", {"instances": instances})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        for instance, prediction in zip(instances, predictions):
            expected = model.predict(np.array([instance], "float32"), verbose=0)[0]
            np.testing.assert_allclose(prediction["probabilities"], expected, rtol=1e-4, atol=1e-5)
        wrong = server.post("/v1/models/bm_TRAIN:predict", {"instances": [values[0][:, :5].tolist()]})
        assert wrong.status_code == 400 and "takes shape [-1, -1, 6]; got [1, 100, 5]" in wrong.json()["error"]
    finally:
        server.stop()
    step_server = Server(step_run[0], grpc=True)
    try:
        rng = np.random.default_rng(0)
        series = rng.normal(size=(2, 30, 6)).astype("float32")
        assert step_server.assert_grpc_equals_rest("long", series.tolist(), {"values": series})["label"].shape == (2, 30)
        inputs = {"values": [rng.normal(size=(30, 6)).tolist(), rng.normal(size=(50, 6)).tolist()]}
        answer = step_server.post("/v1/models/long:predict", {"inputs": inputs})
        assert answer.status_code == 200, answer.text
        outputs = answer.json()["outputs"]
        assert [len(labels) for labels in outputs["label"]] == [30, 50]
        assert len(outputs["probabilities"][0][0]) == 4
    finally:
        step_server.stop()
