"""The page at `GET /` of `seqclf serve`, driven in a real headless browser (Debian's chromium and chromedriver)."""

import dataclasses
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from .test_serving import Server, three_kinds

OLD = Path(__file__).resolve().parent / "fixtures" / "runs_v0"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
browser_needed = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no headless browser here: "
                                    "apt-get install chromium chromium-driver (.ci/run does where it can)")


@pytest.fixture(scope="module")
def server(tiny_run, reviews_csv, tmp_path_factory):
    from seqclf.runs import DataSettings, fit_run

    from .conftest import TINY

    root = three_kinds(tiny_run, tmp_path_factory.mktemp("page") / "models")
    fit_run(DataSettings(str(reviews_csv)), dataclasses.replace(TINY, arch="gru+attn"), out=root / "attended", verbose=0,
            name="attended")
    server = Server(root)
    server.root = root
    yield server
    assert server.stop() == 0


def test_the_page_is_one_document_that_may_reach_only_its_own_server(server):
    answer = server.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'sha256-" in policy
    assert "http://" not in answer.text and "https://" not in answer.text  # nothing fetched from elsewhere
    for name in ("reviews", "pos", "steps", "attended"):
        assert f'"name": "{name}"' in answer.text
    assert '"classes": ["neg", "pos"]' in answer.text  # from the run's labels.txt
    assert server.get("/ui").text == answer.text


@pytest.fixture
def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1500"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    yield driver
    driver.quit()


def ask(browser, model, values):
    """Fill the model's boxes (``{input: text}``), press Predict and return the section once it answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    section = browser.find_element(By.CSS_SELECTOR, f'section[data-model="{model}"]')
    for name, text in values.items():
        box = section.find_element(By.CSS_SELECTOR, f'textarea[name="{name}"]')
        box.clear()
        box.send_keys(text)
    section.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(lambda _: section.find_elements(By.CSS_SELECTOR, ".answer, .error"))
    return section


@browser_needed
def test_typing_a_sentence_shows_the_servers_label_and_probability_bars(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    assert browser.title == "seqclf serve"
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.model")) == 4
    text = "a gripping, funny and moving film"
    expected = server.post("/v1/models/reviews:predict", {"instances": [text]}).json()["predictions"][0]
    section = ask(browser, "reviews", {"text": text})
    assert section.find_element(By.CSS_SELECTOR, ".answer .label").text == expected["label"]
    bars = section.find_elements(By.CSS_SELECTOR, ".bar")
    shown = {bar.find_element(By.CLASS_NAME, "name").text: float(bar.find_element(By.CLASS_NAME, "value").text)
             for bar in bars}
    assert shown == pytest.approx(dict(zip(["neg", "pos"], expected["probabilities"])), abs=5e-4)

    assert not section.find_elements(By.CSS_SELECTOR, ".attention")  # a bigru pooling its last state has none
    attended = server.post("/v1/models/attended:predict", {"instances": [text]}).json()["predictions"][0]
    shaded = ask(browser, "attended", {"text": text}).find_elements(By.CSS_SELECTOR, ".attention .step")
    assert [step.text for step in shaded] == attended["steps"] and len(shaded) == 6  # the words the model read
    assert {"a", "film", "[UNK]"} <= set(attended["steps"]) <= {"a", "gripping", "funny", "and", "moving", "film", "[UNK]"}
    weights = [float(re.fullmatch(r"attention (\S+)", step.get_attribute("title")).group(1)) for step in shaded]
    assert weights == pytest.approx(attended["attention"], abs=5e-4) and sum(weights) == pytest.approx(1, abs=1e-2)
    colours = [re.fullmatch(r"rgba?\(255, 140, 0(?:, ([0-9.]+))?\)", step.value_of_css_property("background-color"))
               for step in shaded]
    alphas = [float(colour.group(1) or 1) for colour in colours]  # the browser writes an opaque colour as rgb(...)
    assert alphas == pytest.approx([w / max(weights) for w in weights], abs=1e-2)

    tags = server.post("/v1/models/pos:predict", {"instances": [["The", "cat", "sat", "."]]}).json()
    tagged = ask(browser, "pos", {"tokens": "The cat sat ."})
    assert [t.text for t in tagged.find_elements(By.CSS_SELECTOR, ".tag .label")] == tags["predictions"][0]["label"]

    broken = ask(browser, "steps", {"values": "[[1, 2"})
    assert "cannot read the input" in broken.find_element(By.CSS_SELECTOR, ".error").text
    series = np.round(np.random.default_rng(0).normal(size=(4, 6)), 3)
    steps = server.post("/v1/models/steps:predict", {"instances": [series.tolist()]}).json()["predictions"][0]
    stepped = ask(browser, "steps", {"values": "\n".join(", ".join(map(str, row)) for row in series)})
    shown_steps = [li.text for li in stepped.find_elements(By.CSS_SELECTOR, ".runs li")]
    assert re.fullmatch(rf"steps? (\d+-)?4: {steps['label'][-1]}", shown_steps[-1]), shown_steps

    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    shot = Path(os.environ.get("SEQCLF_PAGE_SCREENSHOT", tmp_path / "page.png"))
    browser.get_screenshot_as_file(str(shot))
    assert shot.stat().st_size > 10_000


def test_an_export_carries_its_class_names_without_its_run(tiny_run, tmp_path):
    from seqclf.serving import ServedModel

    alone = shutil.copytree(tiny_run / "export" / "reviews" / "1", tmp_path / "7")
    assert (alone / "assets.extra" / "labels.txt").read_text() == "neg\npos\n"
    assert ServedModel.load("reviews", 7, alone).class_names == ["neg", "pos"]
    assert ServedModel.load("reviews", 1, OLD / "text" / "export" / "reviews" / "1").class_names == ["neg", "pos"]


def test_an_attention_model_answers_each_instance_with_its_own_steps(server):
    import seqclf

    texts = ["a gripping, funny and moving film", "dull", "the plot is thin but the cast is good"]
    answer = server.post("/v1/models/attended:predict", {"instances": texts})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    expected = seqclf.load(server.root / "attended").attention_weights(texts)
    for prediction, text, weights in zip(predictions, texts, expected):
        assert len(prediction["steps"]) == len(prediction["attention"]) == len(text.replace(",", "").split())
        np.testing.assert_allclose(prediction["attention"], weights, atol=1e-5)
    plain = server.post("/v1/models/reviews:predict", {"instances": texts[:1]}).json()["predictions"][0]
    assert sorted(plain) == ["label", "probabilities"]  # no attention pooling, no attention outputs
