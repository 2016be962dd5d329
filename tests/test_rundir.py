"""Run directories: one writer at a time, nothing half-written, clear messages when the disk says no."""

import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from seqclf.cli import main

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
