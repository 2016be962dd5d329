import json

import pandas as pd
import pytest
from click.testing import CliRunner

from seqclf.cli import main


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def test_fit_writes_a_run_and_prints_where(reviews_csv, tmp_path):
    out = tmp_path / "run"
    result = invoke("fit", reviews_csv, "--arch", "gru", "--units", "8,4", "--epochs", "1", "--out", out,
                    "--name", "mr", "--max-length", "20", "--verbose", "0")
    assert result.exit_code == 0, result.output
    assert f"Run directory: {out}" in result.stdout
    assert "rows: 192 train, 24 validation, 24 test" in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["units"] == [8, 4] and config["settings"]["arch"] == "gru"
    assert config["data_summary"]["sequence_length"] == 20
    assert (out / "export" / "mr" / "1" / "saved_model.pb").exists()


def test_fit_with_separate_val_and_test_files(reviews, tmp_path):
    for name, part in (("train", reviews[:200]), ("val", reviews[200:220]), ("test", reviews[220:])):
        part.to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "run"
    result = invoke("fit", tmp_path / "train.csv", "--val", tmp_path / "val.csv", "--test", tmp_path / "test.csv",
                    "--units", "4", "--epochs", "1", "--out", out, "--verbose", "0")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["val"]["n"], metrics["test"]["n"]) == (20, 20)


def test_evaluate_prints_and_writes_metrics(tiny_run, reviews_csv, tmp_path):
    output = tmp_path / "m.json"
    result = invoke("evaluate", tiny_run, reviews_csv, "--output", output)
    assert result.exit_code == 0, result.output
    metrics = json.loads(output.read_text())
    assert metrics["n"] == 240 and 0.0 <= metrics["accuracy"] <= 1.0
    assert f"accuracy  {metrics['accuracy']:.4f}" in result.stdout


def test_fit_from_standard_input_and_its_info(reviews_csv, tmp_path):
    fitted = invoke("fit", "-", "--format", "csv", "--epochs", "1", "--units", "4", "--verbose", "0", "--out",
                    tmp_path / "piped", input=reviews_csv.read_text())
    assert fitted.exit_code == 0, fitted.output
    info = invoke("info", tmp_path / "piped")
    assert info.exit_code == 0 and "data             standard input" in info.stdout


def test_predict_a_file_stdin_and_single_texts(tiny_run, reviews, tmp_path):
    table = tmp_path / "new.tsv"
    reviews[["text"]].head(5).rename(columns={"text": "sentence"}).to_csv(table, sep="\t", index=False)
    result = invoke("predict", tiny_run, table)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(frame.columns) == ["id", "label", "prob_neg", "prob_pos"] and len(frame) == 5
    assert frame[["prob_neg", "prob_pos"]].sum(axis=1).round(4).eq(1.0).all()
    assert set(frame.label) <= {"neg", "pos"}

    piped = invoke("predict", tiny_run, "-", input="a fine film\nawful\n")
    assert piped.exit_code == 0 and len(piped.stdout.strip().splitlines()) == 3
    single = invoke("predict", tiny_run, "--text", "a fine film", "--output", tmp_path / "p.csv")
    assert single.exit_code == 0
    assert (tmp_path / "p.csv").read_text().splitlines()[1] == piped.stdout.splitlines()[1]


def test_info_and_archs(tiny_run, reviews_csv):
    result = invoke("info", tiny_run)
    assert result.exit_code == 0
    assert "architecture     bigru units=8" in result.stdout and "parameters" in result.stdout
    assert f"data             {reviews_csv} (sha256 " in result.stdout
    assert "test             accuracy" in result.stdout
    assert "on a GPU         cuDNN for 2 of 2 recurrent layers\n" in result.stdout  # bigru: both directions
    archs = invoke("archs")
    listed = archs.stdout.split("\n\n", 1)[1].splitlines()
    cells = [line.split()[0] for line in listed]
    assert cells == ["rnn", "lstm", "gru", "gru-reset-before", "jordan", "peephole-lstm", "cifg", "lstm-nig", "lstm-nfg",
                     "lstm-nog", "lstm-niaf", "lstm-noaf", "lstm-np", "lstm-fgr"]
    assert [line.split()[0] for line in listed if line.endswith("[cuDNN]")] == ["lstm", "gru"]
    assert "[bi-]CELL[:UNITS,...][+attn]" in archs.stdout and "bi-cifg+attn" in archs.stdout


def _write(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


GOOD = "text,label\n" + "".join(f"sentence number {i} here,{'pos' if i % 2 else 'neg'}\n" for i in range(40))
BAD_FILES = {
    "missing": (None, "does not exist"),
    "empty": (b"", "is empty"),
    "no text column": ("score,label\n" + "".join(f"{i},a\n{i},b\n" for i in range(20)), "could not tell what kind of data"),
    "one class": ("text,label\n" + "a b c,pos\n" * 30, "only one class ('pos')"),
    "empty label": (GOOD + "one more sentence here,\n", "empty labels in column 'label' at data row 41"),
    "empty text": (GOOD + ",pos\n", "empty text in column 'text' at data row 41"),
    "latin-1 bytes": (GOOD.encode() + "caf\xe9 cr\xe8me,pos\n".encode("latin-1"), "not valid utf-8: byte 0xe9 on line 42"),
    "too small": ("text,label\na b c,x\nd e f,y\n", "too small for a stratified test split"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_data_gets_one_line_exit_2_and_no_run(case, tmp_path):
    content, message = BAD_FILES[case]
    data = tmp_path / "data.csv" if content is None else _write(tmp_path / "data.csv", content)
    out = tmp_path / "runs" / "r"
    result = invoke("fit", data, "--out", out, "--epochs", "1", "--units", "2")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob("runs/.*"))


@pytest.mark.parametrize("args, message", [
    (["--arch", "transformer"], "unknown architecture 'transformer' (cell 'transformer'); a spec is"),
    (["--units", "64,abc"], "--units must be positive integers"),
    (["--dropout", "2"], "'dropout' parameter must be in [0, 1)"),
    (["--epochs", "0"], "'epochs' parameter must be an integer >= 1"),
    (["--kind", "video"], "unknown kind 'video'"),
    (["--text-col", "body"], "has no text column 'body'"),
    (["--label-col", "stars"], "has no label column 'stars'"),
    (["--val-size", "1.5"], "'val_size' parameter must be in (0, 1)"),
    (["--format", "tsv"], "could not find the label column"),
])
def test_bad_options_get_one_line_exit_2_and_no_run(args, message, tmp_path):
    data = _write(tmp_path / "data.csv", GOOD)
    out = tmp_path / "r"
    result = invoke("fit", data, "--out", out, "--epochs", "1", "--units", "2", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_click_rejects_values_outside_the_choices(tmp_path):
    result = invoke("fit", _write(tmp_path / "d.csv", GOOD), "--pooling", "median")
    assert result.exit_code == 2 and "Invalid value for '--pooling'" in result.stderr


def test_existing_run_directory_is_not_overwritten(tiny_run, tmp_path):
    before = sorted(p.name for p in tiny_run.iterdir())
    result = invoke("fit", _write(tmp_path / "d.csv", GOOD), "--out", tiny_run)
    assert result.exit_code == 2 and "exists already" in result.stderr
    assert sorted(p.name for p in tiny_run.iterdir()) == before


def test_evaluate_and_predict_report_bad_runs_and_labels(tiny_run, tmp_path):
    result = invoke("evaluate", tmp_path, _write(tmp_path / "d.csv", GOOD))
    assert result.exit_code == 2 and "is not a complete run directory" in result.stderr
    other = _write(tmp_path / "o.csv", "text,label\nfine film,great\n")
    result = invoke("evaluate", tiny_run, other)
    assert result.exit_code == 2 and "labels the training data does not: 'great'" in result.stderr
    result = invoke("predict", tiny_run)
    assert result.exit_code == 2 and "pass either DATA" in result.stderr


def test_ctrl_c_during_fit_still_writes_a_complete_run(reviews_csv, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "seqclf.cli", "fit", str(reviews_csv), "--units", "4", "--epochs", "500",
         "--patience", "500", "--out", str(out), "--verbose", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    seen = []
    for line in process.stdout:  # wait until two epochs have finished
        seen.append(line)
        if sum("val_loss" in s for s in seen) >= 2:
            break
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output = "".join(seen) + process.communicate(timeout=120)[0]
    assert process.returncode == 0, output
    assert "interrupted: keeping the best weights so far" in output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_by"] == "interrupted" and 2 <= metrics["epochs_run"] < 500
    assert (out / "export" / "reviews" / "1" / "saved_model.pb").exists()
