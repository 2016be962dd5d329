"""Build the long-format BasicMotions recordings (one row per time step) from the ``.ts`` files.

Each recording strings five BasicMotions cases (10 s each, 10 Hz) together in a random order,
so the activity label changes within a recording: the data for many-to-many (a label per
step) and for windowed many-to-one. Training cases go to the training recordings and test
cases to the test recordings, so the published split is kept.

Run from the project root (writes ``datasets/basic_motions_long_{TRAIN,TEST}.csv``)::

    python datasets/make_basic_motions_long.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

from seqclf.data.readers import read_table

HERE = Path(__file__).resolve().parent
CHANNELS = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"]  # the archive's order: accelerometer, gyroscope
CASES_PER_RECORDING = 5


def long_recordings(cases, seed):
    """One row per step: ``recording, step, <channels>, activity``; cases shuffled into recordings."""
    order = np.random.default_rng(seed).permutation(len(cases))
    parts = []
    for position, case in enumerate(order):
        values, label = cases["values"].iloc[case], cases["label"].iloc[case]
        part = pd.DataFrame(values, columns=CHANNELS).round(6)
        part.insert(0, "recording", position // CASES_PER_RECORDING + 1)
        part["activity"] = label
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table.insert(1, "step", table.groupby("recording").cumcount())
    return table


def main():
    for split, seed in (("TRAIN", 0), ("TEST", 1)):
        cases = read_table(HERE / f"basic_motions_{split}.ts")
        path = HERE / f"basic_motions_long_{split}.csv"
        long_recordings(cases, seed).to_csv(path, index=False)
        print(f"written {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
