import io
import json
import sys

import pandas as pd
import pytest

from seqclf.data.readers import detect_format, read_table
from seqclf.errors import DataError

ROWS = pd.DataFrame({"text": ["a fine film", "NA", "dull , dull"], "label": ["pos", "neg", "neg"]})


@pytest.mark.parametrize("suffix, writer", [
    (".csv", lambda f, p: f.to_csv(p, index=False)),
    (".tsv", lambda f, p: f.to_csv(p, sep="\t", index=False)),
    (".parquet", lambda f, p: f.to_parquet(p)),
    (".jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
])
def test_each_table_format_round_trips_with_text_kept_as_given(tmp_path, suffix, writer):
    path = tmp_path / f"data{suffix}"
    writer(ROWS, path)
    frame = read_table(path)
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == ["a fine film", "NA", "dull , dull"]  # "NA" is text, not missing


def test_lines_format_reads_one_text_per_line(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("first text\nsecond , text\n", encoding="utf-8")
    assert read_table(path)["text"].tolist() == ["first text", "second , text"]


def test_format_option_overrides_the_suffix(tmp_path):
    path = tmp_path / "data.txt"
    ROWS.to_csv(path, sep="\t", index=False)
    assert read_table(path, format="tsv").shape == (3, 2)


def test_stdin_is_read_as_lines(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("one\ntwo\n".encode())))
    assert read_table("-")["text"].tolist() == ["one", "two"]


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\nhi there,pos\n".encode("utf-8"))
    assert list(read_table(path).columns) == ["text", "label"]


def test_integer_labels_stay_integers(tmp_path):
    path = tmp_path / "ints.csv"
    path.write_text("text,label\na b,0\nc d,1\n", encoding="utf-8")
    assert read_table(path)["label"].tolist() == [0, 1]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"   \n", "is empty"),
    (b"text,label\n", "has no data rows"),
    (b"text,label\ncaf\xe9 ,pos\n", "not valid utf-8: byte 0xe9 on line 2"),
])
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_other_encodings_are_read_when_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\ncaf\xe9 noir,pos\n")
    assert read_table(path, encoding="latin-1")["text"][0] == "caf\u00e9 noir"


def test_malformed_json_lines_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "a", "label": 1}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_table(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_format("data.xlsx")


def test_garbage_parquet_is_a_data_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match="not a valid Parquet file"):
        read_table(path)


def test_labels_that_read_as_infinite_floats_keep_their_text(tmp_path):
    """Found by hypothesis: a label column holding "inf" and a whole number read as floats could not become strings."""
    from seqclf.data.columns import label_strings
    from seqclf.data.text import TextAdapter

    path = tmp_path / "odd.csv"
    path.write_text("text,label\na fine film,inf\ndull stuff,3\n")
    frame = read_table(path)
    assert label_strings(frame["label"]).tolist() == ["inf", "3.0"]
    assert label_strings(pd.Series([2.0, 3.0])).tolist() == ["2", "3"]
    adapter = TextAdapter()
    adapter.prepare(frame, "odd.csv")
    assert adapter.check_classes(frame, "odd.csv") == ["3.0", "inf"]
