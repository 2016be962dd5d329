"""report.html: every run's page, its most confidently wrong examples, `seqclf report`, and the page in a browser."""

import html
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from seqclf.cli import main
from seqclf.report import MAX_POINTS, shown_input

from .test_page import OLD, browser, browser_needed  # noqa: F401  (browser: a fixture)


def test_every_run_has_a_page_with_its_metrics_plots_and_surest_mistakes(tiny_run):
    page = (tiny_run / "report.html").read_text()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy']:.4f}" in page and "id=metrics" in page and "id=per-class" in page
    assert page.count("data:image/png;base64,") == 2  # the learning curves and the confusion matrix
    assert "http://" not in page and "https://" not in page and "<script" not in page  # nothing fetched, nothing run
    examples = json.loads((tiny_run / "report_examples.json").read_text())
    predictions = pd.read_csv(tiny_run / "test_predictions.csv", dtype={"id": str}).set_index("id")
    wrong = predictions[predictions["label"] != predictions["true_label"]]
    assert len(examples) == min(12, len(wrong)) > 0
    confidences = [example["confidence"] for example in examples]
    assert confidences == sorted(confidences, reverse=True)
    surest = wrong[[f"prob_{name}" for name in ("neg", "pos")]].max(axis=1).max()
    assert confidences[0] == pytest.approx(surest, abs=1e-6)
    for example in examples:  # each is the prediction table's row of its id, and its text is on the page
        row = predictions.loc[example["id"]]
        assert (example["true"], example["predicted"]) == (row["true_label"], row["label"])
        assert example["confidence"] == pytest.approx(row[f"prob_{row['label']}"], abs=1e-6)
        assert html.escape(example["input"]["text"]) in page


def test_seqclf_report_rebuilds_the_page_and_refuses_what_is_not_a_run(tiny_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    (run / "report.html").unlink()
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0 and result.output.strip() == f"written {run / 'report.html'}", result.output
    page = (run / "report.html").read_text()
    original = (tiny_run / "report.html").read_text()
    assert page.split("id=metrics", 1)[1] == original.split("id=metrics", 1)[1]  # only the run's path differs
    old = tmp_path / "old"  # a run written before reports (and tasks) existed
    shutil.copytree(OLD / "tagger", old)
    assert CliRunner().invoke(main, ["report", str(old)]).exit_code == 0
    assert "tag on tokens data" in (old / "report.html").read_text()
    missing = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "is not a run directory" in missing.output and len(missing.output.splitlines()) == 1


def test_inputs_are_shown_as_text_tokens_or_series_without_their_padding():
    assert shown_input("a fine film") == {"text": "a fine film"}
    assert shown_input(np.array(["The", "cat", "", ""], dtype=object)) == {"tokens": ["The", "cat"]}
    assert shown_input({"tokens": np.array(["Hi", ""], dtype=object), "pos": np.array(["UH", ""])}) == {"tokens": ["Hi"]}
    series = np.full((10, 2), np.nan)
    series[:7] = np.arange(14).reshape(7, 2)
    series[3, 1] = np.nan  # a missing value inside stays; the padding after the last real step goes
    shown = shown_input(series)
    assert len(shown["series"]) == 7 and shown["every"] == 1 and np.isnan(shown["series"][3][1])
    long = shown_input(np.arange(2 * MAX_POINTS + 10, dtype="float64")[:, None])
    assert long["every"] == 3 and len(long["series"]) == (2 * MAX_POINTS + 10) // 3 and long["series"][0] == [1.0]


def test_per_step_and_translation_examples_hold_their_steps_and_references(tmp_path):
    from seqclf.data.readers import read_table
    from seqclf.estimators import SequenceTagger
    from seqclf.tasks import get_task

    from .test_tagging import UD_SAMPLE

    frame = read_table(UD_SAMPLE).head(40)
    tagger = SequenceTagger(kind="tokens", units=(4,), epochs=1, batch_size=16, seed=0).fit(frame)
    prepared = tagger.adapter_.prepare(frame, "test")
    probabilities = tagger.predict_proba(prepared)
    examples = get_task("tag").confidently_wrong(tagger.adapter_, prepared, probabilities, 3)
    assert len(examples) == 3 and [e["confidence"] for e in examples] == sorted((e["confidence"] for e in examples),
                                                                                 reverse=True)
    for example in examples:
        steps, tokens = example["steps"], example["input"]["tokens"]
        assert len(steps["true"]) == len(steps["predicted"]) == len(tokens)
        assert example["wrong_steps"] == sum(t != p for t, p in zip(steps["true"], steps["predicted"])) > 0


@browser_needed
def test_the_page_opens_in_a_browser_without_errors_and_shows_its_plots(tiny_run, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get((tiny_run / "report.html").as_uri())
    assert "accuracy" in browser.find_element(By.ID, "metrics").text
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2 and all(browser.execute_script("return arguments[0].naturalWidth", image) > 300
                                    for image in images)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".example")) > 0
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
