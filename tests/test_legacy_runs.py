"""Run directories written before tasks became objects (tests/fixtures/runs_v0, made by the code of e221d04) still
load, predict, describe themselves and serve."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.base import clone

import seqclf
from seqclf.cli import main
from seqclf.data.readers import read_table

from .test_serving import Server

ROOT = Path(__file__).resolve().parent.parent
OLD = Path(__file__).resolve().parent / "fixtures" / "runs_v0"


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory):
    """A copy of the old runs (evaluate writes into a run directory)."""
    copy = tmp_path_factory.mktemp("old") / "runs"
    shutil.copytree(OLD, copy, ignore=shutil.ignore_patterns("README.md"))
    return copy


def test_the_fixtures_are_as_the_old_code_wrote_them():
    for name in ("text", "tagger", "steps"):
        config = json.loads((OLD / name / "config.json").read_text())
        assert "task" not in config and config["seqclf_version"] == "0.1.0"
    assert json.loads((OLD / "tagger" / "config.json").read_text())["adapter"]["task"] == "many-to-many"


def test_old_runs_load_with_their_task_and_predict(old_runs):
    text = seqclf.load(old_runs / "text")
    assert type(text) is seqclf.SequenceClassifier and text.task_.name == "many-to-one"
    assert text.predict(["a gripping , funny film", "dull"]).shape == (2,)
    tagger = seqclf.load(old_runs / "tagger")
    assert type(tagger) is seqclf.SequenceTagger and tagger.task_.name == "tag"
    tags = tagger.predict(pd.DataFrame({"tokens": [["The", "cat", "sat", "."], ["Hi"]]}))
    assert tags.shape == (2, 4) and set(tags[0]) <= set(tagger.classes_)
    steps = seqclf.load(old_runs / "steps")
    assert steps.task_.name == "many-to-many" and steps.task_.per_step
    series = [np.random.default_rng(0).normal(size=(100, 6)).astype("float32")]  # two windows of 50
    assert steps.predict(series).shape == (2, 50)


def test_an_old_tagger_loads_in_a_fresh_process_and_a_loaded_model_refits(old_runs, reviews):
    """Loading must register seqclf's layers itself (the tagger's token lookup), whatever was imported before."""
    code = ("import sys, pandas as pd, seqclf; tagger = seqclf.load(sys.argv[1]); "
            "print(tagger.task_.name, tagger.predict(pd.DataFrame({'tokens': [['The', 'cat']]})).shape)")
    answer = subprocess.run([sys.executable, "-c", code, str(old_runs / "tagger")], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert answer.returncode == 0 and answer.stdout.split() == ["tag", "(1,", "2)"], answer.stderr[-500:]
    again = clone(seqclf.load(old_runs / "text")).set_params(epochs=1)
    assert again.fit(reviews["text"][:40], reviews["label"][:40]).predict(["fine"]).shape == (1,)


def test_old_runs_answer_info_predict_and_evaluate(old_runs, tmp_path):
    runner = CliRunner()
    info = runner.invoke(main, ["info", str(old_runs / "tagger")])
    assert info.exit_code == 0 and "task             tag" in info.output and "pooling=none" in info.output
    predicted = runner.invoke(main, ["predict", str(old_runs / "text"), "--text", "a fine film"])
    assert predicted.exit_code == 0 and predicted.output.startswith("id,label,prob_neg,prob_pos")
    sentences = read_table(ROOT / "datasets" / "ud_english_sample_test.conllu").head(20)
    sentences.to_json(tmp_path / "few.jsonl", orient="records", lines=True)
    evaluated = runner.invoke(main, ["evaluate", str(old_runs / "tagger"), str(tmp_path / "few.jsonl"),
                                     "--output", str(tmp_path / "m.json")])
    assert evaluated.exit_code == 0, evaluated.output
    assert 0.0 <= json.loads((tmp_path / "m.json").read_text())["accuracy"] <= 1.0


def test_old_runs_serve_side_by_side(old_runs):
    server = Server(old_runs)
    try:
        assert set(server.get("/readyz").json()["models"]) == {"reviews", "pos", "steps"}
        text = server.post("/v1/models/reviews:predict", {"instances": ["a fine film"]}).json()
        assert text["predictions"][0]["label"] in ("neg", "pos")
        tags = server.post("/v1/models/pos:predict", {"instances": [["The", "cat"], ["Hi"]]}).json()
        assert [len(p["label"]) for p in tags["predictions"]] == [2, 1]
        steps = server.post("/v1/models/steps:predict", {"instances": [[[0.1] * 6] * 3]}).json()
        assert len(steps["predictions"][0]["label"]) == 3
    finally:
        assert server.stop() == 0
