"""Multi-worker training: two worker processes on loopback train what one process trains."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from seqclf import SequenceClassifier
from seqclf.cli import main
from seqclf.distribute import Cluster, make_strategy
from seqclf.errors import ConfigError

from .backups import kill_after_epoch

#: dropout 0: each worker draws dropout masks for its half of a batch, so with dropout the runs agree only statistically
SETTINGS = ["--units", "8", "--dropout", "0", "--batch-size", "32", "--verbose", "2"]
#: the largest difference allowed between a probability from two workers and from one process: the sums of the
#: gradients run in another order, nothing else differs (measured: 1e-6, the rounding of test_predictions.csv)
TOLERANCE = 1e-4


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _fit(args, tmp_path, tf_config=None):
    """Start ``seqclf fit ARGS`` in a process of its own, its temporary folder inside ``tmp_path``."""
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-m", "seqclf.cli", "fit", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _cluster(ports):
    return [{"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
            for i in range(len(ports))]


def _finish(process, timeout=240):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_two_workers_train_what_one_process_trains_and_only_the_chief_writes(reviews_csv, tmp_path):
    (tmp_path / "tmp").mkdir()
    run, alone, keras_fit = tmp_path / "cluster", tmp_path / "alone", tmp_path / "keras_fit"
    args = [str(reviews_csv), "--epochs", "2", *SETTINGS]
    workers = [_fit([*args, "--out", str(run), "--tensorboard"], tmp_path, config) for config in _cluster(_free_ports(2))]
    single = _fit([*args, "--out", str(alone), "--strategy", "multi-worker"], tmp_path)
    plain = _fit([*args, "--out", str(keras_fit), "--strategy", "default"], tmp_path)  # Keras' own model.fit
    (chief_code, chief_out, chief_err), (code, out, err) = (_finish(w) for w in workers)
    assert chief_code == 0, chief_err
    assert code == 0, err
    assert _finish(single)[0] == 0 and _finish(plain)[0] == 0
    assert f"Run directory: {run}" in chief_out and "Run directory" not in out
    assert "this is worker 1 of 2" in err and "the chief writes the run directory" in err
    for name in ("config.json", "model.keras", "labels.txt", "metrics.json", "history.csv", "test_predictions.csv",
                 "learning_curves.png", "confusion_matrix.png", "export/reviews/1/saved_model.pb"):
        assert (run / name).exists(), name
    assert [p.name.split(".")[0] for p in (run / "logs" / "train").iterdir()] == ["events"]  # the chief's alone
    # the other worker left nothing: no second run, no backups, an empty temporary folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "cluster", "keras_fit", "tmp"]
    assert list((tmp_path / "tmp").iterdir()) == []
    together = pd.read_csv(run / "test_predictions.csv")
    for other in (alone, keras_fit):  # our training step also computes what Keras' model.fit computes
        one = pd.read_csv(other / "test_predictions.csv")
        assert together["id"].tolist() == one["id"].tolist()
        assert np.abs(together.filter(like="prob_").to_numpy() - one.filter(like="prob_").to_numpy()).max() <= TOLERANCE
        # Keras weights its training accuracy by the class weights; ours counts examples (validation has no weights)
        # and sums the embedding's gradient in another order (measured: losses 2e-4 apart after two epochs)
        columns, atol = (["loss", "accuracy", "val_loss", "val_accuracy"], TOLERANCE) if other == alone else (
            ["loss", "val_loss", "val_accuracy"], 1e-3)
        pd.testing.assert_frame_equal(pd.read_csv(run / "history.csv")[columns],
                                      pd.read_csv(other / "history.csv")[columns], check_exact=False, atol=atol)
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["strategy"] == "auto" and config["data_summary"]["rows"]["train"] == 192


def test_a_dead_worker_fails_the_run_clearly_and_a_restart_resumes(reviews_csv, tmp_path):
    (tmp_path / "tmp").mkdir()
    run, backup = tmp_path / "run", tmp_path / ".run.backup"
    args = [str(reviews_csv), "--epochs", "8", "--patience", "8", *SETTINGS, "--out", str(run)]
    chief, worker = (_fit(args, tmp_path, config) for config in _cluster(_free_ports(2)))
    finished = kill_after_epoch(worker, backup, 2)  # the chief's backups: the other worker keeps none
    code, _, err = _finish(chief)
    assert code == 2 and not run.exists()
    assert err.strip().splitlines()[-1].startswith("Error: training lost contact with another worker")
    assert f"after {finished} finished epoch(s); start every worker again with the same command" in err
    chief, worker = (_fit(args, tmp_path, config) for config in _cluster(_free_ports(2)))  # any ports will do
    (code, _, err), (worker_code, _, worker_err) = _finish(chief), _finish(worker)
    assert code == 0 and worker_code == 0, err + worker_err
    assert f"resuming after epoch {finished}" in err  # from the chief's backup; the other worker takes its weights
    assert f"continuing after epoch {finished} with the chief's weights" in worker_err
    assert len(pd.read_csv(run / "history.csv")) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tmp"]


def test_workers_that_read_different_data_refuse_to_train(reviews, tmp_path):
    (tmp_path / "tmp").mkdir()
    halves = []
    for number, half in enumerate((reviews.iloc[:120], reviews.iloc[120:])):
        halves.append(tmp_path / f"half{number}.csv")
        half.to_csv(halves[-1], index=False)
    workers = [_fit([str(data), "--epochs", "1", *SETTINGS, "--out", str(tmp_path / "run")], tmp_path, config)
               for data, config in zip(halves, _cluster(_free_ports(2)))]
    for code, _, err in (_finish(w) for w in workers):
        assert code == 2
        assert err.strip().splitlines()[-1] == ("Error: the workers learned different vocabularies, scalers or "
                                                "classes: they must all read the same data files with the same settings")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half0.csv", "half1.csv", "tmp"]


def test_mirrored_on_one_device_trains_like_keras_fit(reviews):
    texts, labels = reviews["text"].tolist(), reviews["label"].tolist()
    fitted = [SequenceClassifier(units=(4,), epochs=2, dropout=0.0, batch_size=32, strategy=strategy).fit(texts, labels)
              for strategy in ("mirrored", "default")]
    assert np.abs(fitted[0].predict_proba(texts[:50]) - fitted[1].predict_proba(texts[:50])).max() <= TOLERANCE
    assert fitted[0].settings().strategy == "mirrored"


@pytest.mark.parametrize("tf_config, expected", [
    (None, Cluster(1, 0, True)),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, Cluster(2, 0, True)),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, Cluster(2, 1, False)),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, Cluster(2, 0, False)),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, Cluster(2, 0, True)),
])
def test_the_cluster_and_the_chief_come_from_tf_config(monkeypatch, tf_config, expected):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert Cluster.from_environment() == expected


@pytest.mark.parametrize("tf_config, message", [
    ("{not json", "TF_CONFIG is not a cluster description"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "TF_CONFIG is not a cluster description"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}), "is not in its cluster"),
])
def test_a_broken_tf_config_is_one_clear_error(monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=message):
        Cluster.from_environment()


def test_a_cluster_needs_multi_worker_and_one_out_for_all(monkeypatch, reviews_csv, tmp_path):
    monkeypatch.setenv("TF_CONFIG", json.dumps(_cluster(["a:1", "b:2"])[0]))
    with pytest.raises(ConfigError, match="use --strategy multi-worker"):
        make_strategy("default")
    result = CliRunner().invoke(main, ["fit", str(reviews_csv), "--strategy", "mirrored", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--strategy mirrored trains on this machine alone" in result.stderr
    result = CliRunner().invoke(main, ["fit", str(reviews_csv)])
    assert result.exit_code == 2 and "pass the same --out to every worker" in result.stderr
    assert list(tmp_path.iterdir()) == []
