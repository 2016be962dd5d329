"""Helpers for tests that kill a training process once its backups have reached an epoch."""

import json
import signal
import time


def kill_after_epoch(process, backup, epoch, timeout=180):
    """Wait until the epoch backups in ``backup`` reach ``epoch``, SIGKILL ``process``; return the epoch backed up."""
    metadata = backup / "training_metadata.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (metadata.exists() and json.loads(metadata.read_text() or "{}").get(
            "epoch", 0) >= epoch):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return json.loads(metadata.read_text())["epoch"]
