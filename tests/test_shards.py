"""Shards: a glob or folder of CSV/Parquet files streamed a chunk at a time, never loaded whole."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from seqclf.cli import main
from seqclf.data import shards as shards_module
from seqclf.data.shards import RowStream, Shards, shard_files
from seqclf.data.text import TextAdapter
from seqclf.errors import DataError
from seqclf.training import Streamed, StreamBuckets


@pytest.fixture()
def parquet_shards(reviews, tmp_path):
    """The 240 reviews as 3 Parquet shards of 100, 100 and 40 rows, and the same as CSV files in a folder."""
    (tmp_path / "parquet").mkdir()
    (tmp_path / "csv").mkdir()
    for number, start in enumerate(range(0, len(reviews), 100)):
        part = reviews.iloc[start:start + 100]
        part.to_parquet(tmp_path / "parquet" / f"part-{number}.parquet", index=False)
        part.to_csv(tmp_path / "csv" / f"part-{number}.csv", index=False)
    return tmp_path


def test_globs_and_folders_name_their_shards_and_bad_ones_say_why(parquet_shards):
    assert [p.name for p in shard_files(parquet_shards / "parquet" / "part-*.parquet")] == [
        "part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert [p.name for p in shard_files(parquet_shards / "csv")] == ["part-0.csv", "part-1.csv", "part-2.csv"]
    assert shard_files(parquet_shards / "csv" / "part-0.csv") is None  # one file: read whole as before
    with pytest.raises(DataError, match="names no files"):
        shard_files(parquet_shards / "nothing-*.parquet")
    (parquet_shards / "csv" / "extra.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="must all be one of csv, tsv, parquet; found csv, parquet"):
        shard_files(parquet_shards / "csv")


def test_every_row_falls_in_one_part_whatever_the_chunks(parquet_shards, monkeypatch):
    files = shard_files(parquet_shards / "parquet")
    parts = [np.concatenate([p for _, p, _ in Shards(files, seed=3, chunk_rows=size).hold_out(0.1, 0.2).chunks()])
             for size in (7, 1000)]
    assert len(parts[0]) == 240 and (parts[0] == parts[1]).all()
    counts = {part: int((parts[0] == part).sum()) for part in ("train", "val", "test")}
    assert sum(counts.values()) == 240 and 10 <= counts["val"] <= 40 and 30 <= counts["test"] <= 70
    assert Shards(files, seed=3).hold_out(0.1, 0.2).count("test") == counts["test"]
    other = np.concatenate([p for _, p, _ in Shards(files, seed=4).hold_out(0.1, 0.2).chunks()])
    assert (other != parts[0]).any()  # another seed, another split
    monkeypatch.setattr(shards_module, "MAX_HELD_OUT", 12)  # large data: held-out parts are capped
    capped = Shards(files, seed=3).hold_out(0.1, 0.2)
    assert capped.shares == {"val": 0.05, "test": 0.05}


def test_a_streamed_fit_learns_what_a_fit_on_the_same_rows_learns(parquet_shards):
    shards = Shards(shard_files(parquet_shards / "parquet"), seed=0, chunk_rows=30).hold_out(0.1, 0.1)
    streamed = TextAdapter()
    first = next(shards.chunks())[0]
    streamed.prepare(first, "shards")
    rows = RowStream(shards, streamed)
    streamed.fit(rows, "shards")
    whole = pd.concat(list(rows.chunks()), ignore_index=True)
    in_memory = _fitted(whole)
    assert len(whole) == len(rows)
    assert streamed.vocabulary_ == in_memory.vocabulary_
    assert streamed.sequence_length_ == in_memory.sequence_length_
    assert streamed.length_stats_ == in_memory.length_stats_
    assert streamed.classes_ == in_memory.classes_ == ["neg", "pos"]
    assert streamed.class_counts_ == whole["label"].value_counts().to_dict()


def _fitted(frame):
    adapter = TextAdapter()
    adapter.prepare(frame, "frame")
    return adapter.fit(frame, "frame")


def test_an_epoch_of_stream_batches_holds_every_training_row_once(parquet_shards, monkeypatch):
    monkeypatch.setattr(StreamBuckets, "POOL_ROWS", 64)  # a shuffle buffer smaller than the data
    shards = Shards(shard_files(parquet_shards / "csv"), seed=0, chunk_rows=25).hold_out(0.1, 0.1)
    adapter = TextAdapter()
    adapter.prepare(next(shards.chunks())[0], "shards")
    rows = RowStream(shards, adapter)
    adapter.fit(rows, "shards")
    examples = Streamed(rows, adapter.encode, lambda pool: adapter.targets(pool, "shards"), [1, 1])
    buckets = StreamBuckets(examples, 2, batch_size=16, seed=0)
    epochs = [list(buckets.dataset().as_numpy_iterator()) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == len(buckets)  # the announced number of batches
        assert sum(len(y) for _, y, _ in batches) == len(rows)
        assert all(len(y) <= 16 for _, y, _ in batches)
    assert sum(int(y[:, 1].sum()) for _, y, _ in epochs[0]) == adapter.class_counts_["pos"]
    first, second = ([int(x.sum()) for x, _, _ in batches] for batches in epochs)
    assert first != second and sum(first) == sum(second)  # reshuffled, the same rows
    assert buckets.dataset().options().autotune.enabled is False  # see the test of LengthBuckets


def test_cli_fits_on_parquet_and_csv_shards_alike(parquet_shards):
    runs = []
    for name, data in (("from_parquet", f"{parquet_shards}/parquet/part-*.parquet"),
                       ("from_csv", str(parquet_shards / "csv"))):
        out = parquet_shards / name
        result = CliRunner().invoke(main, ["fit", data, "--out", str(out), "--epochs", "1", "--units", "4",
                                           "--verbose", "0"])
        assert result.exit_code == 0, result.output
        assert "3 shards, 240 rows, read a chunk at a time" in result.stderr
        recorded = json.loads((out / "config.json").read_text())["data"]["data"]
        assert recorded["shards"] == 3 and recorded["rows"] == 240 and recorded["sha256"] is None
        info = CliRunner().invoke(main, ["info", str(out)])
        assert info.exit_code == 0 and f"{data} (3 shards, 240 rows)" in info.output
        runs.append(pd.read_csv(out / "test_predictions.csv"))
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert len(runs[0]) > 10


def test_a_glob_the_shell_expanded_gets_a_hint_to_quote_it(parquet_shards):
    files = [str(p) for p in sorted((parquet_shards / "parquet").iterdir())]
    result = CliRunner().invoke(main, ["fit", *files, "--epochs", "1"])
    assert result.exit_code == 2
    assert "got 3" in result.stderr and 'Quote it: seqclf fit "data/part-*.parquet"' in result.stderr


@pytest.mark.parametrize("damage, message", [
    ("no_text", "part-1.parquet has no text column"),
    ("no_match", "names no files"),
    ("empty_text", "part-1.csv (the chunk from data row 41) has empty text in column 'text' at data row 3"),
])
def test_bad_shards_are_one_clear_error(parquet_shards, damage, message, monkeypatch):
    data = f"{parquet_shards}/parquet/part-*.parquet"
    if damage == "no_text":
        pd.DataFrame({"label": ["pos", "neg"], "score": [1, 2]}).to_parquet(parquet_shards / "parquet" / "part-1.parquet")
    elif damage == "empty_text":
        monkeypatch.setattr(shards_module, "CHUNK_ROWS", 40)
        shard = pd.read_csv(parquet_shards / "csv" / "part-1.csv")
        shard.loc[42, "text"] = "  "  # data row 43 of the file: the third of its second chunk
        shard.to_csv(parquet_shards / "csv" / "part-1.csv", index=False)
        data = str(parquet_shards / "csv")
    else:
        data = f"{parquet_shards}/parquet/other-*.parquet"
    result = CliRunner().invoke(main, ["fit", data, "--out", str(parquet_shards / "run"), "--epochs", "1"])
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and message in last and "Traceback" not in result.stderr
    assert not (parquet_shards / "run").exists()
