"""Run directories: one writer at a time, nothing half-written, clear messages when the disk says no."""

import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from seqclf.cli import main

from .backups import kill_after_epoch

TINY = ["--units", "4", "--verbose", "0"]


def test_a_second_writer_refuses_and_a_killed_writers_claim_is_taken_over(reviews_csv, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "seqclf.cli", "fit", str(reviews_csv), "--out", str(out),
                              "--epochs", "200", "--patience", "200", *TINY],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = tmp_path / ".run.lock"
    try:
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lock.read_text().strip() == str(first.pid)
        second = CliRunner().invoke(main, ["fit", str(reviews_csv), "--out", str(out), "--epochs", "1", *TINY])
        assert second.exit_code == 2
        assert f"another seqclf process (pid {first.pid}) is writing {out}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not out.exists() and lock.exists()  # killed: no run, a stale claim
    third = CliRunner().invoke(main, ["fit", str(reviews_csv), "--out", str(out), "--epochs", "1", *TINY])
    assert third.exit_code == 0, third.output
    assert (out / "model.keras").exists() and not lock.exists()
    assert not list(tmp_path.glob(".run.partial-*"))  # the killed writer's partial run went with its claim


def test_an_out_that_cannot_be_written_is_one_clear_error(reviews_csv, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(main, ["fit", str(reviews_csv), "--out", str(blocker / "run"), "--epochs", "1", *TINY])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: could not claim the run directory {blocker / 'run'}")
    assert os.listdir(tmp_path) == ["a_file"]


def test_a_killed_fit_resumes_after_its_last_finished_epoch(reviews_csv, tmp_path):
    import json

    import pandas as pd

    args = [str(reviews_csv), "--epochs", "6", "--patience", "6", "--batch-size", "32", *TINY]
    whole = CliRunner().invoke(main, ["fit", *args, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    out, backup = tmp_path / "resumed", tmp_path / ".resumed.backup"
    first = subprocess.Popen([sys.executable, "-m", "seqclf.cli", "fit", *args, "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = kill_after_epoch(first, backup, 2)
    assert 2 <= finished < 6 and not out.exists()
    again = CliRunner().invoke(main, ["fit", *args, "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert f"resuming after epoch {finished}" in again.stderr
    assert not backup.exists()
    ran = [json.loads((run / "metrics.json").read_text()) for run in (tmp_path / "whole", out)]
    assert ran[1]["epochs_run"] == ran[0]["epochs_run"] == 6
    assert len(pd.read_csv(out / "history.csv")) == 6
    # the epochs before the kill are the uninterrupted run's, to the digit; later ones differ only by the data order
    history = [pd.read_csv(run / "history.csv") for run in (tmp_path / "whole", out)]
    pd.testing.assert_frame_equal(history[1].head(finished), history[0].head(finished), check_exact=False, rtol=1e-5)
    assert abs(history[1]["val_loss"].iloc[-1] - history[0]["val_loss"].iloc[-1]) < 0.05


def test_a_kill_while_a_backup_is_written_leaves_the_epoch_before_it_intact(tmp_path):
    import keras
    import numpy as np

    from seqclf.training import EpochBackup
    from seqclf.training.backup import finished_epoch, weights_path

    def model():
        built = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        built.compile(optimizer="adam", loss="mse")
        return built

    trained, backup = model(), EpochBackup(tmp_path / "backup")
    backup.set_model(trained)
    for epoch in range(2):
        trained.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
        backup.on_epoch_end(epoch)
    after_two = trained.get_weights()
    assert finished_epoch(backup.backup_dir) == 2
    assert sorted(p.name for p in backup.backup_dir.iterdir()) == ["training_metadata.json", "weights-2.weights.h5"]
    # killed while epoch 3's weights were half written, or after they were written but before the epoch was marked
    weights_path(backup.backup_dir, 3).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    fresh = model()
    assert EpochBackup(backup.backup_dir).restore(fresh) == 2
    for restored, saved in zip(fresh.get_weights(), after_two):
        np.testing.assert_array_equal(restored, saved)
    assert int(fresh.optimizer.iterations.numpy()) == 2  # the optimizer's state came back too
