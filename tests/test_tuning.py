"""seqclf tune: the search space, trials that are ordinary fits, the refit run, resuming, and KerasTuner's chief/worker."""

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

import seqclf
from seqclf.cli import main
from seqclf.errors import ConfigError
from seqclf.tuning import declare, read_space, settings_of

from .test_distribute import _free_ports

#: a space of tiny models, so a trial takes seconds
TINY_SPACE = {"cell": ["gru", "lstm"], "bidirectional": [False], "layers": [1], "units": [4, 8], "embedding_dim": [8],
              "batch_size": [64], "pooling": ["last", "mean"]}


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(TINY_SPACE))
    return path


def test_the_space_is_our_own_settings_narrowed_by_a_file_and_fitted_to_the_kind(space, tmp_path):
    text = read_space(space, "text", per_step=False)
    assert text["units"] == [4, 8] and text["dropout"] == {"min": 0.0, "max": 0.5, "step": 0.1}
    assert "convolution" not in text and "convolution" in read_space(None, "sensor", per_step=False)
    assert "embedding_dim" not in read_space(None, "sensor", False) and "pooling" not in read_space(None, "tokens", True)
    hp = declare(read_space(None, "text", False))
    assert hp.Choice("units", [32, 64, 128]) in (32, 64, 128) and 3e-4 <= hp.get("learning_rate") <= 3e-3
    assert settings_of({"cell": "gru", "bidirectional": True, "layers": 2, "units": 8, "convolution": "fcn",
                        "tuner/epochs": 3}) == {"arch": "bi-gru:8,8+fcn"}
    assert settings_of({"cell": "lstm", "units": 8, "convolution": "fcn+rocket"}) == {"arch": "lstm:8+fcn+rocket"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"cells": ["gru"]}')
    with pytest.raises(ConfigError, match="unknown setting\\(s\\) cells; the space names cell, "):
        read_space(bad, "text", False)
    with pytest.raises(ConfigError, match="unknown architecture"):
        settings_of({"cell": "grue"})


def test_tune_refits_the_best_trial_as_a_run_with_its_trials_and_plot(reviews_csv, space, tmp_path):
    clf, trials = seqclf.tune(reviews_csv, tmp_path / "run", tuner="random", max_trials=3, space=str(space), epochs=2)
    run = tmp_path / "run"
    assert len(trials) == 3 and (trials["status"] == "COMPLETED").all() and trials["val_loss"].notna().all()
    best = trials.loc[trials["val_loss"].idxmin()]
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["arch"] == best["arch"] == clf.arch_ and config["settings"]["pooling"] == best["pooling"]
    assert config["adapter"]["embedding_dim"] == 8 and set(best["arch"].split(":")[1].split(",")) <= {"4", "8"}
    assert pd.read_csv(run / "trials.csv").shape[0] == 3 and (run / "tuning.png").stat().st_size > 10_000
    assert (run / "report.html").read_text().count("data:image/png") == 3  # the tuning plot is on the page too
    assert json.loads((run / "metrics.json").read_text())["test"]["n"] == 24  # the test split, read by the refit only
    assert not (tmp_path / ".run.tuning").exists()  # the search's state goes once the run is written


def _tune(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "seqclf.cli", "tune", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def test_a_killed_tune_started_again_goes_on_from_its_trials(reviews_csv, space, tmp_path):
    args = [reviews_csv, "--tuner", "random", "--max-trials", "3", "--space", space, "--epochs", "1",
            "--out", tmp_path / "run", "--verbose", "0"]
    first = _tune(args)
    for line in first.stderr:  # kill it as soon as its first trial is done
        if line.startswith("trial 0 "):
            first.send_signal(signal.SIGKILL)
            break
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL and not (tmp_path / "run").exists()
    (tmp_path / ".run.tuning" / "oracle.json").write_text("")  # as a kill in the middle of KerasTuner's write leaves it
    result = CliRunner().invoke(main, ["tune", *map(str, args)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()  # trial 0 was not run again (it may still be named as the best)
    assert not any(line.startswith("trial 0 ") for line in lines) and any(line.startswith("trial 2 of at most 3")
                                                                          for line in lines)
    assert "the validation split holds 24 examples: too few to tell trials apart" in result.stderr
    assert pd.read_csv(tmp_path / "run" / "trials.csv")["trial"].tolist() == [0, 1, 2]


def test_kerastuners_chief_serves_the_oracle_a_worker_runs_the_trials_and_only_the_chief_writes(
        reviews_csv, space, tmp_path):
    port = _free_ports(1)[0]
    oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    args = [reviews_csv, "--tuner", "random", "--max-trials", "2", "--space", space, "--epochs", "1",
            "--out", tmp_path / "run", "--verbose", "0"]
    chief = _tune(args, {**oracle, "KERASTUNER_TUNER_ID": "chief"})
    worker = _tune(args, {**oracle, "KERASTUNER_TUNER_ID": "tuner0"})
    worker_out, worker_err = worker.communicate(timeout=300)
    chief_out, chief_err = chief.communicate(timeout=300)
    assert worker.returncode == 0, worker_err
    assert chief.returncode == 0, chief_err
    assert "trial 1 of at most 2" in worker_err and "the chief refits the best" in worker_err
    assert "run directory" in chief_out and "run directory" not in worker_out
    assert pd.read_csv(tmp_path / "run" / "trials.csv").shape[0] == 2


@pytest.mark.parametrize("args, message", [
    (["--time-budget", "soon"], "--time-budget must be a positive duration like 20m"),
    (["--task", "seq2seq"], "--task seq2seq is not searched yet"),
])
def test_a_search_that_cannot_run_is_one_line_and_exit_2(reviews_csv, tmp_path, args, message):
    result = CliRunner().invoke(main, ["tune", str(reviews_csv), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / ".run.tuning").exists()
