"""Hostile input, fuzzed with hypothesis: every outcome is a valid dataset or one of seqclf's own errors.

Readers get random bytes under every suffix, random CSV tables (ragged rows, any Unicode, huge
fields), random ``.ts`` and CoNLL content; adapters get what the readers let through; the
Python API gets random arrays of random shapes and dtypes. Anything else (a pandas, NumPy or
TensorFlow exception, a hang, a frame that breaks the adapter's promises) fails the test.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqclf.data.adapters import detect_adapter, registered
from seqclf.data.readers import read_table
from seqclf.errors import SeqclfError
from seqclf.inputs import as_frame

# 200 examples per test in `make test` (about 15 s); SEQCLF_FUZZ_EXAMPLES=5000 for a deeper search
FUZZ = settings(max_examples=int(os.environ.get("SEQCLF_FUZZ_EXAMPLES", 200)), deadline=5000, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt", ".ts", ".npz", ".parquet", ".conllu", ".conll")
cells = st.one_of(st.text(max_size=30), st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(str),
                  st.sampled_from(["", "NaN", "inf", "-inf", "?", "pos", "neg", "2020-01-01", "1e309"]),
                  st.text(min_size=5000, max_size=20000, alphabet="ab ,\"\n"))  # huge fields


def read_or_refuse(path, **options):
    """``read_table``'s frame, or None when it refused with a seqclf error."""
    try:
        frame = read_table(path, **options)
    except SeqclfError as error:
        assert str(error).strip(), "an error without a message"
        return None
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    assert all(isinstance(c, str) for c in frame.columns)
    return frame


def prepare_or_refuse(frame, source):
    """Every adapter that takes the frame (detected, then each by name) prepares it or refuses it cleanly."""
    candidates = []
    try:
        candidates.append(detect_adapter(frame, source))
    except SeqclfError:
        pass
    candidates += [cls for cls in registered().values() if cls not in candidates]
    for cls in candidates:
        try:
            adapter = cls(task=cls.tasks[-1])
            examples = adapter.prepare(frame.copy(), source)
            adapter.check_classes(examples, source)
            adapter.fit_labels(examples, source)
        except SeqclfError as error:
            assert str(error).strip()
            continue
        check_promises(adapter, examples)


def check_promises(adapter, examples):
    """What a prepared dataset promises, whatever the input was."""
    assert len(examples) > 0 and len(adapter.classes_) >= 2
    if adapter.kind == "sensor":
        for values in examples["values"]:
            assert values.dtype == np.float32 and values.ndim == 2 and not np.isinf(values).any()
    if adapter.kind == "text":
        assert examples[adapter.text_col].astype(str).str.strip().str.len().gt(0).all()
    if adapter.kind == "tokens":
        lengths = adapter.lengths(examples)
        assert (lengths > 0).all()
        assert (examples[adapter.label_col].map(len).to_numpy() == lengths).all()
    if adapter.kind == "chars":
        assert (examples["input"].str.len() == examples["next"].str.len()).all()


@FUZZ
@given(data=st.binary(max_size=4000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_under_every_suffix(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"data{suffix}"
    path.write_bytes(data)
    frame = read_or_refuse(path)
    if frame is not None:
        prepare_or_refuse(frame, str(path))


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=5), min_size=0, max_size=12),
       header=st.lists(st.sampled_from(["text", "label", "id", "series", "step", "x", "y", "Date", "Close",
                                        "tokens", "tags", ""]), min_size=1, max_size=5),
       separator=st.sampled_from([",", "\t"]))
def test_random_tables_ragged_rows_any_unicode_huge_fields(tmp_path_factory, rows, header, separator):
    lines = [separator.join(header)] + [separator.join(row) for row in rows]
    path = tmp_path_factory.mktemp("fuzz") / ("data.csv" if separator == "," else "data.tsv")
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    frame = read_or_refuse(path, encoding="utf-8")
    if frame is not None:
        prepare_or_refuse(frame, str(path))


ts_lines = st.one_of(
    st.sampled_from(["@problemName x", "@univariate true", "@univariate false", "@dimensions 2", "@dimensions 0",
                     "@dimensions x", "@classLabel true a b", "@classLabel true", "@classLabel false",
                     "@timeStamps true", "@targetLabel true", "@equalLength false", "@data", "# comment", ""]),
    st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.just("?"),
                                st.text(max_size=3)), max_size=6).map(",".join), min_size=1, max_size=3)
    .map(":".join).flatmap(lambda body: st.sampled_from([body, body + ":a", body + ":b", body + ":c"])),
)


@FUZZ
@given(lines=st.lists(ts_lines, max_size=15))
def test_random_ts_content(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "data.ts"
    path.write_text("\n".join(lines), encoding="utf-8")
    frame = read_or_refuse(path)
    if frame is not None:
        prepare_or_refuse(frame, str(path))


conll_fields = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"),
                                 min_size=0, max_size=8),
                         st.sampled_from(["_", "1", "1-2", "2.1", "NOUN", "B-PER", "O", "-DOCSTART-"]))
conll_lines = st.one_of(st.just(""), st.sampled_from(["# sent_id = s", "# text = t", "#"]),
                        st.lists(conll_fields, min_size=1, max_size=11).map("\t".join),
                        st.lists(conll_fields, min_size=1, max_size=4).map(" ".join))


@FUZZ
@given(lines=st.lists(conll_lines, max_size=20), suffix=st.sampled_from([".conllu", ".conll"]))
def test_random_conll_content(tmp_path_factory, lines, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"data{suffix}"
    path.write_text("\n".join(lines), encoding="utf-8")
    frame = read_or_refuse(path)
    if frame is not None:
        prepare_or_refuse(frame, str(path))


@FUZZ
@given(records=st.lists(st.dictionaries(st.sampled_from(["text", "label", "tokens", "tags", "values", "id"]),
                                        st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                                               st.text(max_size=10)),
                                                     lambda inner: st.lists(inner, max_size=4), max_leaves=10)),
                        min_size=1, max_size=8))
def test_random_json_lines(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("fuzz") / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    frame = read_or_refuse(path)
    if frame is not None:
        prepare_or_refuse(frame, str(path))


dtypes = st.sampled_from(["float32", "float64", "int8", "int64", "uint8", "bool", "complex64", "object", "<U3",
                          "datetime64[s]", "float16"])


@FUZZ
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=4), dtype=dtypes, fill=st.sampled_from(
    [0.0, 1.5, np.nan, np.inf]), ragged=st.booleans())
def test_random_arrays_through_the_python_api(shape, dtype, fill, ragged):
    try:
        X = np.full(shape, fill).astype(dtype) if not ragged else [np.full(shape[1:] or [2], fill).astype(dtype)
                                                                    for _ in range(max(1, shape[0] if shape else 1))]
    except (ValueError, TypeError, OverflowError):
        return  # NumPy itself cannot make this array
    n = len(X) if np.ndim(X) or ragged else 0
    y = np.array(["a", "b"] * (n // 2 + 1))[:n]
    try:
        frame = as_frame(X, y, "text", "label")
    except (SeqclfError, TypeError) as error:  # TypeError: NumPy refusing object arrays of non-numbers (sklearn's way)
        assert str(error).strip()
        return
    prepare_or_refuse(frame, "X")


def test_the_fuzzing_can_fail():
    """The checks above are not vacuous: a frame that breaks a promise is caught."""
    adapter = registered()["sensor"]()
    bad = pd.DataFrame({"values": [np.array([[np.inf]], dtype="float32")]})
    adapter.classes_ = ["a", "b"]
    with pytest.raises(AssertionError):
        check_promises(adapter, bad)
    tagger = registered()["tokens"]()
    tagger.classes_, tagger.tokens_col, tagger.label_col = ["X", "Y"], "tokens", "tags"
    with pytest.raises(AssertionError):
        check_promises(tagger, pd.DataFrame({"tokens": [["a", "b"]], "tags": [["X"]]}))
