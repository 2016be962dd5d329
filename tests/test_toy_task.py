"""A task registered from outside seqclf (as "Adding a task" in the README shows) runs through fit, predict,
evaluate, export and serve without a change to any seqclf module."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import seqclf
from seqclf.cli import main
from seqclf.errors import ConfigError
from seqclf.tasks import TASKS, PerSequence, register_task

from .test_serving import Server


class TopTwo(PerSequence):
    """One label per text, also scored by whether the true class is among the two most probable."""

    name = "top-two"
    description = "one label per text; also reports top-2 accuracy"
    kinds = ("text",)
    default_arch = "gru"

    def extra_metrics(self, adapter, frame, probabilities):
        truth = adapter.targets(frame, "toy")
        best_two = np.argsort(-probabilities, axis=1)[:, :2]
        return {"top2_accuracy": float((best_two == truth[:, None]).any(axis=1).mean())}

    def report_lines(self, metrics):
        return [f"top-2     {metrics['top2_accuracy']:.4f}"]


@pytest.fixture(scope="module")
def top_two():
    task = register_task(TopTwo())
    yield task
    del TASKS[task.name]


def test_a_registered_task_is_a_cli_choice_and_a_python_task(top_two, reviews_csv, reviews, tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "run"
    fitted = CliRunner().invoke(main, ["fit", "--task", "top-two", str(reviews_csv), "--units", "4", "--epochs", "1",
                                       "--out", str(run), "--verbose", "0"])
    assert fitted.exit_code == 0, fitted.output
    config, metrics = (json.loads((run / name).read_text()) for name in ("config.json", "metrics.json"))
    assert config["task"] == "top-two" and config["settings"]["arch"] == "gru"  # the task's default
    assert metrics["test"]["top2_accuracy"] == 1.0  # two classes: the truth is always among the best two

    evaluated = CliRunner().invoke(main, ["evaluate", str(run), str(reviews_csv), "--output", str(run.parent / "e.json")])
    assert evaluated.exit_code == 0 and "top-2     1.0000" in evaluated.output
    predicted = CliRunner().invoke(main, ["predict", str(run), "--text", "a fine film"])
    assert predicted.exit_code == 0 and predicted.output.startswith("id,label,prob_neg,prob_pos")

    loaded = seqclf.load(run)
    assert loaded.task_ is top_two and loaded.predict(["a fine film"]).shape == (1,)
    clf = seqclf.SequenceClassifier(task="top-two", units=(4,), epochs=1).fit(reviews["text"], reviews["label"])
    assert clf.task_ is top_two and clf.arch_ == "gru"

    server = Server(run, grpc=True)
    try:
        server.assert_grpc_equals_rest(config["model"]["export_name"], ["a fine film"], {"text": ["a fine film"]})
        answer = server.post(f"/v1/models/{config['model']['export_name']}:predict", {"instances": ["a fine film"]})
        assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] in ("neg", "pos")
    finally:
        assert server.stop() == 0


def test_a_task_refuses_kinds_it_does_not_take(top_two):
    with pytest.raises(ConfigError, match="--task top-two does not apply to sensor data"):
        seqclf.SequenceClassifier(task="top-two", kind="sensor", epochs=1).fit([np.ones((5, 1))] * 4, ["a", "b"] * 2)
