"""The real server, started with `seqclf serve` in a subprocess on a free loopback port."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import keras
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework.tensor_pb2 import TensorProto
from click.testing import CliRunner

from seqclf.cli import main

TEXTS = ["an utterly charming , funny film", "boring", "the plot is a mess and the acting is worse"]


def three_kinds(tiny_run, root):
    """``root`` holding the tiny text run ("reviews") beside the saved tagger ("pos") and per-step ("steps") runs."""
    old = Path(__file__).resolve().parent / "fixtures" / "runs_v0"
    shutil.copytree(tiny_run, root / "text")
    for name in ("tagger", "steps"):
        shutil.copytree(old / name, root / name)
    return root


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``seqclf serve`` in a subprocess on free loopback ports, its gRPC API too when ``grpc`` is true."""

    def __init__(self, path, *options, grpc=False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port() if grpc else None
        if grpc:
            options = (*options, "--grpc-port", str(self.grpc_port))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seqclf.cli", "serve", str(path), "--port", str(self.port), *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or too busy starting up to answer
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not become ready")

    def get(self, path):
        return requests.get(self.url + path, timeout=30)

    def post(self, path, body):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.url + path, data=data, timeout=30)

    def grpc_predict(self, name, inputs, version=None, label=None, output_filter=()):
        """A ``PredictRequest`` sent with TF Serving's official client stubs, as its documentation shows a client;
        the outputs as arrays."""
        return {key: tf.make_ndarray(value)
                for key, value in self.grpc_call(name, inputs, version, label, output_filter).outputs.items()}

    def grpc_call(self, name, inputs, version=None, label=None, output_filter=()):
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = name
            request.model_spec.signature_name = "serving_default"
            if version is not None:
                request.model_spec.version.value = version
            if label is not None:
                request.model_spec.version_label = label
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(value if isinstance(value, TensorProto) else tf.make_tensor_proto(value))
            request.output_filter.extend(output_filter)
            return stub.Predict(request, 30.0)

    def assert_grpc_equals_rest(self, name, instances, inputs):
        """The same instances sent as REST ``instances`` and as gRPC tensors (``inputs``, padded) get the same answer:
        strings equal, numbers to 1e-5, a per-step answer cut to each instance's real steps."""
        rest = self.post(f"/v1/models/{name}:predict", {"instances": instances})
        assert rest.status_code == 200, rest.text
        outputs = self.grpc_predict(name, inputs)
        predictions = rest.json()["predictions"]
        assert {len(value) for value in outputs.values()} == {len(predictions)}
        for row, prediction in enumerate(predictions):
            assert set(prediction) == set(outputs)
            for key, expected in prediction.items():
                got = np.asarray(outputs[key][row])
                got = got[:len(expected)] if isinstance(expected, list) else got
                if got.dtype.kind in "OS":  # strings come back as bytes
                    assert np.vectorize(bytes.decode, otypes=[object])(got).tolist() == expected, key
                else:
                    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=key)
        return outputs

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.returncode


@pytest.fixture(scope="module")
def server(tiny_run):
    server = Server(tiny_run, "--max-body-bytes", "4000")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def expected(tiny_run):
    model = keras.saving.load_model(tiny_run / "model.keras", safe_mode=True)
    return model.predict(np.array(TEXTS, dtype=object), verbose=0)


PREDICT = "/v1/models/reviews:predict"


def test_status_and_version_status(server):
    status = server.get("/v1/models/reviews")
    assert status.status_code == 200
    assert status.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert server.get("/v1/models/reviews/versions/1").json() == status.json()


def test_metadata_describes_the_signature(server):
    metadata = server.get("/v1/models/reviews/metadata").json()
    assert metadata["model_spec"] == {"name": "reviews", "signature_name": "", "version": "1"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["text"]["dtype"] == "DT_STRING"
    assert signature["inputs"]["text"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["outputs"]["probabilities"]["tensor_shape"]["dim"]] == ["-1", "2"]
    assert signature["outputs"]["label"]["dtype"] == "DT_STRING"


def test_row_format_equals_the_in_process_model(server, expected):
    for instances in (TEXTS, [{"text": t} for t in TEXTS]):
        answer = server.post(PREDICT, {"instances": instances})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        np.testing.assert_allclose([p["probabilities"] for p in predictions], expected, atol=1e-5)
        assert [p["label"] for p in predictions] == [["neg", "pos"][i] for i in expected.argmax(axis=1)]


def test_columnar_format_and_versioned_url(server, expected):
    for inputs in (TEXTS, {"text": TEXTS}):
        answer = server.post("/v1/models/reviews/versions/1:predict", {"signature_name": "serving_default", "inputs": inputs})
        assert answer.status_code == 200, answer.text
        outputs = answer.json()["outputs"]
        np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
        assert len(outputs["label"]) == 3


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, expected):
    def one(i):
        return i, server.post(PREDICT, {"instances": [TEXTS[i % 3]]}).json()["predictions"][0]["probabilities"]

    with ThreadPoolExecutor(16) as pool:
        for i, probabilities in pool.map(one, range(96)):
            np.testing.assert_allclose(probabilities, expected[i % 3], atol=1e-5)


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not valid JSON"),
    ([1, 2], 400, "must be a JSON object"),
    ({"instances": [1.5, 2.0]}, 400, "takes strings"),
    ({"instances": "a text"}, 400, '"instances" must be a list'),
    ({"instances": []}, 400, "no instances"),
    ({"instances": ["a"], "inputs": ["b"]}, 400, "exactly one of"),
    ({"inputs": {"sentence": ["a"]}}, 400, "must name the input 'text'"),
    ({"instances": [{"body": "a"}]}, 400, "must hold the input 'text'"),
    ({"signature_name": "classify", "instances": ["a"]}, 400, "'classify' not found"),
    ({"instances": ["x" * 5000]}, 413, "over the limit of 4000 bytes"),
])
def test_bad_requests_get_json_errors_and_the_server_stays_up(server, body, status, message, expected):
    answer = server.post(PREDICT, body)
    assert answer.status_code == status
    assert message in answer.json()["error"]
    good = server.post(PREDICT, {"instances": TEXTS[:1]})
    assert good.status_code == 200
    np.testing.assert_allclose(good.json()["predictions"][0]["probabilities"], expected[0], atol=1e-5)


def test_unknown_model_or_version_is_404(server):
    for path in ("/v1/models/nope", "/v1/models/reviews/versions/7", "/v1/models/reviews/versions/x/metadata"):
        answer = server.get(path)
        assert answer.status_code == 404 and "Servable not found" in answer.json()["error"]
    assert server.post("/v1/models/nope:predict", {"instances": ["a"]}).status_code == 404
    assert server.get("/v2/nothing").json() == {"error": "Not Found"}
    wrong_method = server.post("/v1/models/reviews", {"instances": ["a"]})
    assert wrong_method.status_code == 405 and wrong_method.json() == {"error": "Method Not Allowed"}


def test_health_readiness_and_openapi(server):
    assert server.get("/healthz").json() == {"status": "alive"}
    assert server.get("/readyz").json() == {"status": "ready", "models": {"reviews": [1]}}
    spec = server.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/models/{name}:predict" in spec["paths"]


def test_several_models_and_versions_from_one_directory(tiny_run, tmp_path):
    export = tiny_run / "export" / "reviews" / "1"
    for target in ("alpha/1", "beta/1", "beta/2"):
        shutil.copytree(export, tmp_path / "models" / target)
    server = Server(tmp_path / "models")
    try:
        assert server.get("/readyz").json()["models"] == {"alpha": [1], "beta": [1, 2]}
        assert [s["version"] for s in server.get("/v1/models/beta").json()["model_version_status"]] == ["2", "1"]
        assert server.get("/v1/models/beta/metadata").json()["model_spec"]["version"] == "2"
        assert server.post("/v1/models/alpha:predict", {"instances": ["fine"]}).status_code == 200
    finally:
        assert server.stop() == 0


def test_sigterm_finishes_requests_in_flight(tiny_run, expected):
    server = Server(tiny_run, "--name", "mr")
    answers = []
    big = {"instances": TEXTS * 20_000}  # takes the model a few seconds
    thread = threading.Thread(target=lambda: answers.append(server.post("/v1/models/mr:predict", big)))
    thread.start()
    time.sleep(0.5)  # the request is now being computed
    server.process.send_signal(signal.SIGTERM)
    thread.join(timeout=60)
    assert server.process.wait(timeout=30) == 0
    assert answers and answers[0].status_code == 200
    predictions = answers[0].json()["predictions"]
    assert len(predictions) == 60_000
    np.testing.assert_allclose([p["probabilities"] for p in predictions[-3:]], expected, atol=1e-5)


def test_serve_cli_reports_bad_paths_and_busy_ports(tiny_run, tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "no SavedModel found under" in result.stderr
    with socket.create_server(("127.0.0.1", 0)) as busy:
        result = CliRunner().invoke(main, ["serve", str(tiny_run), "--port", str(busy.getsockname()[1])])
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1" in result.stderr


def test_saved_model_cli_shows_the_serving_signature(tiny_run):
    cli = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable))
    shown = subprocess.run([cli, "show", "--dir", str(tiny_run / "export" / "reviews" / "1"), "--all"],
                           capture_output=True, text=True, check=True).stdout
    assert "signature_def['serving_default']" in shown
    assert "dtype: DT_STRING" in shown and "Method name is: tensorflow/serving/predict" in shown


def test_batcher_groups_concurrent_requests_but_never_holds_a_lone_one(tiny_run, expected):
    import asyncio

    from seqclf.serving import Batcher, ServedModel

    model = ServedModel.load("reviews", 1, tiny_run / "export" / "reviews" / "1")
    sizes = []
    run = model.run
    model.run = lambda values: sizes.append(len(values)) or run(values)

    async def scenario():
        batcher = Batcher(model, max_batch_size=64, max_wait_ms=3000)
        batcher.start()
        started = time.monotonic()
        alone = await batcher.predict(TEXTS[:1])
        lone_seconds = time.monotonic() - started
        together = await asyncio.gather(*(batcher.predict([text]) for text in TEXTS * 4))
        await batcher.stop()
        return alone, lone_seconds, together

    alone, lone_seconds, together = asyncio.run(scenario())
    assert lone_seconds < 2.0  # far below max_wait: nobody else was there to wait for
    np.testing.assert_allclose(alone["probabilities"], expected[:1], atol=1e-5)
    assert sizes[0] == 1 and max(sizes) > 1 and sum(sizes) == 13
    for i, outputs in enumerate(together):
        np.testing.assert_allclose(outputs["probabilities"][0], expected[i % 3], atol=1e-5)


def test_the_server_imports_none_of_the_training_side():
    """`seqclf serve` needs TensorFlow and the exports only: no adapter, training, estimator or evaluation module."""
    code = "import sys, seqclf.cli, seqclf.serving; print(' '.join(m for m in sys.modules if m.startswith('seqclf')))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.split())
    assert "seqclf.serving.model" in loaded and "seqclf.tasks" in loaded
    training_side = {"seqclf.data.adapters", "seqclf.data.text", "seqclf.data.sensor", "seqclf.data.stock",
                     "seqclf.data.tokens", "seqclf.data.chars", "seqclf.training", "seqclf.estimators",
                     "seqclf.evaluation", "seqclf.runs", "seqclf.models.builders"}
    assert not loaded & training_side, loaded & training_side
