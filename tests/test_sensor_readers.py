"""The ``.ts`` (UCR/UEA) and ``.npz`` readers: nested sequence frames and their error messages."""

from pathlib import Path

import numpy as np
import pytest

from seqclf.data.readers import read_table
from seqclf.errors import DataError

TIMESERIES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "timeseries"
real_data = pytest.mark.skipif(not TIMESERIES.is_dir(), reason="../shared/data/timeseries is absent")

HEADER = "@problemName Toy\n@timeStamps false\n@missing true\n@classLabel true walk run\n@data\n"


def write(tmp_path, text, name="toy.ts", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_univariate_ts_with_comments_and_missing_values(tmp_path):
    path = write(tmp_path, "# a comment\n\n" + HEADER + "1,2,3:walk\n# between cases\n4,?,6.5:run\n")
    frame = read_table(path)
    assert list(frame.columns) == ["id", "values", "label"]
    assert frame["id"].tolist() == [1, 2] and frame["id"].dtype == np.int64
    assert frame["label"].tolist() == ["walk", "run"]
    assert frame.attrs["channels"] == ["channel_1"]
    first, second = frame["values"]
    assert first.dtype == np.float32 and first.shape == (3, 1)
    np.testing.assert_array_equal(first[:, 0], [1, 2, 3])
    assert second[0, 0] == 4 and np.isnan(second[1, 0]) and second[2, 0] == 6.5


def test_multivariate_ts_with_unequal_channels_is_padded_per_case(tmp_path):
    text = "@dimensions 2\n@equalLength false\n@classLabel true 1 2\n@data\n1,2,3:4,5:1\n7:8:2\n"
    frame = read_table(write(tmp_path, text))
    assert frame.attrs["channels"] == ["channel_1", "channel_2"]
    assert [cell.shape for cell in frame["values"]] == [(3, 2), (1, 2)]
    np.testing.assert_array_equal(frame["values"][0], [[1, 4], [2, 5], [3, np.nan]])
    assert frame["label"].tolist() == ["1", "2"]


def test_crlf_trailing_whitespace_and_unlabeled_ts(tmp_path):
    path = write(tmp_path, "@CLASSLABEL false\n@DATA  \n0.5,1e-3:2,3   \n\n", newline="\r\n")
    frame = read_table(path)
    assert list(frame.columns) == ["id", "values"]
    np.testing.assert_allclose(frame["values"][0], [[0.5, 2], [0.001, 3]])


@pytest.mark.parametrize("text, message", [
    ("@problemName Toy\n@classLabel false\n", r"no @data line"),
    (HEADER + "\n# nothing\n", r"no cases after @data \(line 5\)"),
    ("@dimensions 2\n@classLabel false\n@data\n1,2:3,4\n1,2\n", r"line 5 has 1 channels but 2"),
    ("@classLabel false\n@data\n1:2\n1:2:3\n", r"line 4 has 3 channels but 2"),
    (HEADER + "1,2:walk\n1,x,3:run\n", r"line 7, channel 1, value 2: 'x' is not a number or '\?'"),
    (HEADER + "1,2:walk\n1,2,3\n", r"line 7 has no class label"),
    (HEADER + "1,2:jump\n", r"line 6: class label 'jump' is not among the declared labels run walk"),
    ("@dimensions 2\n@classLabel false\n@data\n1,2: \n", r"line 4: channel 2 is empty"),
    ("@timeStamps true\n@data\n(0,1),(1,2)\n", r"line 1: @timeStamps true .* not supported"),
    ("@targetLabel true\n@data\n1,2:0.5\n", r"line 1: @targetLabel true marks regression targets, but seqclf classifies"),
    ("1,2,3\n@data\n", r"line 1 is data before the @data line"),
])
def test_ts_errors_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text, name="bad.ts")
    with pytest.raises(DataError, match=message) as error:
        read_table(path)
    assert "bad.ts" in str(error.value)


@real_data
def test_real_basic_motions():
    frame = read_table(TIMESERIES / "BasicMotions" / "BasicMotions_TRAIN.ts")
    assert len(frame) == 40
    assert {cell.shape for cell in frame["values"]} == {(100, 6)}
    assert frame["label"].value_counts().to_dict() == {"Standing": 10, "Running": 10, "Walking": 10, "Badminton": 10}
    assert len(frame.attrs["channels"]) == 6


@real_data
def test_real_variable_length_pickup_gestures():
    frame = read_table(TIMESERIES / "PickupGestureWiimoteZ" / "PickupGestureWiimoteZ_TRAIN.ts")
    lengths = [cell.shape[0] for cell in frame["values"]]
    assert len(frame) == 50 and min(lengths) == 29 and max(lengths) == 361
    assert not any(np.isnan(cell).any() for cell in frame["values"])
    assert frame["label"].nunique() == 10


def save_npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_with_scalar_labels_round_trips(tmp_path):
    X = np.arange(24, dtype=np.float64).reshape(4, 3, 2)
    X[1, 2, 0] = np.nan
    frame = read_table(save_npz(tmp_path, X=X, y=np.array([0, 1, 1, 0])))
    assert frame["id"].tolist() == [1, 2, 3, 4]
    assert frame.attrs["channels"] == ["channel_1", "channel_2"]
    assert all(cell.dtype == np.float32 and cell.shape == (3, 2) for cell in frame["values"])
    np.testing.assert_array_equal(np.stack(frame["values"]), X.astype(np.float32))
    assert frame["label"].tolist() == [0, 1, 1, 0] and type(frame["label"][0]) is int


def test_npz_string_labels_stay_strings(tmp_path):
    frame = read_table(save_npz(tmp_path, X=np.zeros((2, 5)), y=np.array(["walk", "run"])))
    assert frame["values"][0].shape == (5, 1)
    assert frame["label"].tolist() == ["walk", "run"] and type(frame["label"][0]) is str


def test_npz_with_per_step_labels(tmp_path):
    y = np.array([[0, 0, 1], [1, 2, 2]])
    frame = read_table(save_npz(tmp_path, X=np.zeros((2, 3, 4)), y=y))
    assert [cell.tolist() for cell in frame["label"]] == [[0, 0, 1], [1, 2, 2]]
    assert all(cell.shape == (3,) for cell in frame["label"])


def test_npz_without_y_has_no_label_column(tmp_path):
    frame = read_table(save_npz(tmp_path, X=np.ones((3, 7, 1), dtype=np.int32)))
    assert list(frame.columns) == ["id", "values"]
    assert frame["values"][2].dtype == np.float32 and frame["values"][2].shape == (7, 1)


@pytest.mark.parametrize("arrays, message", [
    ({"series": np.zeros((2, 3))}, r"no array named X \(found: series\)"),
    ({"X": np.zeros(4)}, r"X has shape \(4,\); expected \(n_samples, n_timesteps, n_features\)"),
    ({"X": np.zeros((2, 3, 4, 5))}, r"X has shape \(2, 3, 4, 5\)"),
    ({"X": np.array([["a", "b"]])}, r"X has non-numeric dtype"),
    ({"X": np.zeros((3, 4)), "y": np.array([1, 2])}, r"y has shape \(2,\) but X holds 3 samples"),
    ({"X": np.zeros((2, 4)), "y": np.zeros((2, 5))}, r"y has 5 labels per sample but X has 4 time steps"),
])
def test_npz_errors(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message) as error:
        read_table(save_npz(tmp_path, name="bad.npz", **arrays))
    assert "bad.npz" in str(error.value)


@pytest.mark.parametrize("content", [b"not a zip archive at all", b"PK\x03\x04 truncated"])
def test_npz_that_is_not_an_archive(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"bad.npz is not a valid .npz file"):
        read_table(path)
