"""Epoch backups a kill at any moment cannot spoil: each finished epoch's weights (with the optimizer's state), early
stopping's state and the history, and one small file naming the last epoch whose files are all complete."""

import json
import logging
import os
import shutil
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger("seqclf.training")
#: The last epoch backed up in full; written last, by an atomic rename, after the files it points to.
METADATA = "training_metadata.json"


def finished_epoch(backup_dir):
    """The last epoch whose backup is complete in ``backup_dir`` (0 when there is none)."""
    metadata = Path(backup_dir) / METADATA
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0


def weights_path(backup_dir, epoch):
    """Where the weights and optimizer state after ``epoch`` are backed up."""
    return Path(backup_dir) / f"weights-{epoch}.weights.h5"


class EpochBackup(keras.callbacks.Callback):
    """Keras' ``BackupAndRestore``, made safe against a kill while it writes.

    ``BackupAndRestore`` overwrites one weights file and then the epoch beside it: a kill during
    the first write leaves a corrupt file (``OSError: bad object header version number``), one
    between the two leaves the weights of one epoch with the number of the one before. Here each
    epoch has its own weights file, and the epoch number is renamed into place once that file is
    complete; the weights of the epochs before it are removed only then. The backup goes when
    training ends (a Ctrl-C leaves it for the caller, as Keras does).
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = Path(backup_dir)

    def restore(self, model):
        """Load the last complete backup into ``model`` (compiled); return its epoch, 0 when there is none."""
        epoch = finished_epoch(self.backup_dir)
        if epoch:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(weights_path(self.backup_dir, epoch))
        return epoch

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        latest = weights_path(self.backup_dir, epoch + 1)
        self.model.save_weights(latest, overwrite=True)
        written = self.backup_dir / f"{METADATA}.partial"
        written.write_text(json.dumps({"epoch": epoch + 1}))
        os.replace(written, self.backup_dir / METADATA)
        for old in set(self.backup_dir.glob("weights-*.weights.h5")) - {latest}:
            old.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.backup_dir, ignore_errors=True)


class TrainingState(keras.callbacks.Callback):
    """Back up what the weights do not hold: early stopping, the NaN guard, the history and, with a ``plateau``
    schedule (Keras' ``ReduceLROnPlateau``), its best loss and wait (the rate itself is the optimizer's).

    Saved at each epoch's end as ``state-<epoch>.json`` (and the best weights so far as
    ``best-<epoch>.npz``) in ``backup_dir``, before :class:`EpochBackup` marks the epoch complete;
    on a resumed run it restores the state of the epoch the backup resumes from, so early stopping
    goes on as if training had never stopped.
    """

    def __init__(self, backup_dir, stopper, guard, history, plateau=None):
        super().__init__()
        self.backup_dir, self.stopper, self.guard, self.history = Path(backup_dir), stopper, guard, history
        self.plateau = plateau

    def on_train_begin(self, logs=None):
        epoch = finished_epoch(self.backup_dir)
        state_path = self.backup_dir / f"state-{epoch}.json"
        if not epoch or not state_path.exists():
            return
        state = json.loads(state_path.read_text())
        self.stopper.best, self.stopper.wait, self.stopper.best_epoch = state["best"], state["wait"], state["best_epoch"]
        self.guard.best_loss, self.guard.best_epoch = state["guard_best_loss"], state["guard_best_epoch"]
        if self.plateau is not None and "plateau" in state:
            self.plateau.best, self.plateau.wait = state["plateau"]["best"], state["plateau"]["wait"]
        saved = np.load(self.backup_dir / f"best-{epoch}.npz")
        for owner, key in ((self.stopper, "stopper"), (self.guard, "guard")):
            weights = [saved[f"{key}{i}"] for i in range(state[f"{key}_weights"])]
            owner.best_weights = weights or None
        self.history.history = state["history"]
        self.history.epoch = list(range(epoch))
        log.info("resuming after epoch %d from the backup in %s", epoch, self.backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"{key}{i}": w for key, owner in (("stopper", self.stopper), ("guard", self.guard))
                  for i, w in enumerate(owner.best_weights or [])}
        np.savez(self.backup_dir / f"best-{epoch + 1}.npz", **arrays)
        best = self.stopper.best  # None until early stopping starts watching (after the warm-up)
        state = {"best": None if best is None else float(best), "wait": self.stopper.wait, "best_epoch": self.stopper.best_epoch,
                 "stopper_weights": len(self.stopper.best_weights or []), "guard_weights": len(self.guard.best_weights or []),
                 "guard_best_loss": float(self.guard.best_loss), "guard_best_epoch": self.guard.best_epoch,
                 "history": {k: [float(v) for v in values] for k, values in self.history.history.items()}}
        if self.plateau is not None:
            state["plateau"] = {"best": float(self.plateau.best), "wait": self.plateau.wait}
        (self.backup_dir / f"state-{epoch + 1}.json").write_text(json.dumps(state))
        for old in (f"state-{epoch - 1}.json", f"best-{epoch - 1}.npz"):  # keep this epoch's and the one before
            (self.backup_dir / old).unlink(missing_ok=True)
