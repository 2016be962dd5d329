"""The model server and model loading under hostile input (issue "Reliability").

- Model files: only what seqclf wrote loads; a ``.keras`` file carrying Python code (a ``Lambda``
  layer) is refused without running it, and the server reads nothing but the SavedModels
  ``find_models`` found.
- URLs: a model name or version cannot reach outside the served folder; every odd request
  target gets a 4xx JSON error, sent over a raw socket so no client tidies the path first.
- The REST API fuzzed from its own OpenAPI description with schemathesis.
- A few seconds of the soak of ``benchmarks/server_soak.py``: no 5xx, no wrong answer.
"""

import http.client
import importlib.util
import json
import shutil
import socket
import zipfile
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import hypothesis
import keras
import pytest
import requests
import schemathesis
import tensorflow as tf
from click.testing import CliRunner

from seqclf.cli import main
from seqclf.errors import SeqclfError
from seqclf.runs import load_run
from seqclf.serving import RequestError, ServedModel, find_models, openapi

from .conftest import ROOT
from .test_serving import TEXTS, Server

PREDICT = "/v1/models/reviews:predict"


# ---------------------------------------------------------------------------------------------------
# Model files


def lambda_model(path, marker):
    """Save a model whose Lambda layer writes ``marker`` when the model is rebuilt or called."""
    target = str(marker)
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: (open(target, "w").write("ran"), x)[1])(inputs)
    keras.Model(inputs, outputs).save(path)
    if marker.exists():  # building the model above ran the lambda once, here, on purpose
        marker.unlink()
    return path


def with_config(source, target, change):
    """Copy the ``.keras`` zip ``source`` to ``target`` with its config.json changed by ``change(config)``."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    change(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def _lambda_layer(config):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Lambda")


def _function_from_os(config):  # the Lambda's function named by module and name instead of as bytecode
    _lambda_layer(config)["config"]["function"] = {"module": "os", "class_name": "function", "config": "system",
                                                   "registered_name": "system"}


def _class_from_subprocess(marker):
    def change(config):  # a "layer" that is subprocess.Popen(["touch", marker])
        layer = _lambda_layer(config)
        layer.update(module="subprocess", class_name="Popen", registered_name=None,
                     config={"args": ["touch", str(marker)]})
    return change


@pytest.fixture(scope="module")
def bait(tmp_path_factory):
    """A marker path and a ``.keras`` file whose Lambda layer would create it if anything ran it."""
    folder = tmp_path_factory.mktemp("bait")
    marker = folder / "the-lambda-ran"
    return lambda_model(folder / "model.keras", marker), marker


@pytest.fixture(scope="module")
def hostile_run(tiny_run, bait, tmp_path_factory):
    """A copy of the tiny run whose model.keras is the bait (its SavedModel export is the real one)."""
    run = tmp_path_factory.mktemp("hostile") / "run"
    shutil.copytree(tiny_run, run)
    shutil.copy(bait[0], run / "model.keras")
    return run


def test_the_bait_works_when_safe_mode_is_off(bait):
    """The control: Keras with safe mode off does run the Lambda, so the refusals below mean something."""
    path, marker = bait
    keras.saving.load_model(path, safe_mode=False)
    assert marker.exists()
    marker.unlink()


@pytest.mark.parametrize("variant", ["python lambda", "function from os", "class from subprocess"])
def test_a_keras_file_carrying_code_is_refused_and_not_run(hostile_run, bait, variant, tmp_path):
    _, marker = bait
    model = hostile_run / "model.keras"
    if variant != "python lambda":
        run = tmp_path / "run"
        shutil.copytree(hostile_run, run)
        change = _function_from_os if variant == "function from os" else _class_from_subprocess(marker)
        model = with_config(hostile_run / "model.keras", run / "model.keras", change)
    with pytest.raises(SeqclfError, match="cannot be loaded safely"):
        load_run(model.parent)
    assert not marker.exists()
    result = CliRunner().invoke(main, ["predict", str(model.parent), "--text", "fine"])
    assert result.exit_code == 2, result.output
    assert "model.keras cannot be loaded safely" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_the_server_reads_only_saved_models(hostile_run, bait, tmp_path):
    _, marker = bait
    keras_only = tmp_path / "keras-only"
    keras_only.mkdir()
    shutil.copy(hostile_run / "model.keras", keras_only / "model.keras")
    result = CliRunner().invoke(main, ["serve", str(keras_only)])
    assert result.exit_code == 2 and "no SavedModel found" in result.stderr
    # Version folders are ASCII numbers: not other scripts' digits, which str.isdigit() and int() accept.
    for folder in ("m/\u0661", "m/\u00b2", "m/7"):
        (tmp_path / "tree" / folder).mkdir(parents=True)
        (tmp_path / "tree" / folder / "saved_model.pb").touch()
    assert find_models(tmp_path / "tree") == {"m": {7: tmp_path / "tree" / "m" / "7"}}
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------
# The served folder, and URLs that try to leave it


@pytest.fixture(scope="module")
def served(hostile_run, tmp_path_factory):
    """``root/served`` (the hostile run) served; beside it, outside, another SavedModel and an etc/passwd."""
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(hostile_run, root / "served")
    shutil.copytree(hostile_run / "export" / "reviews" / "1", root / "outside" / "secret" / "1")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:SECRET-PASSWD-LINE\n")
    server = Server(root / "served", "--max-body-bytes", "100000")
    yield server
    assert server.stop() == 0


def raw_request(port, method, target, body=b"", headers=()):
    """Send ``target`` byte for byte (no client normalises it); return ``(status, content type, body)``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close",
                b"Content-Length: %d" % len(body), *headers]
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        answer = http.client.HTTPResponse(sock, method=method)
        answer.begin()
        return answer.status, answer.getheader("content-type"), answer.read()


ESCAPES = [
    b"/v1/models/..%2F..%2Fetc/metadata", b"/v1/models/../../etc/passwd", b"/v1/models/..%2F..%2Fetc%2Fpasswd",
    b"/v1/models/..%2Foutside%2Fsecret", b"/v1/models/..%2Foutside%2Fsecret/metadata", b"/v1/models/%2e%2e",
    b"/v1/models/%2e%2e/versions/1/metadata", b"/v1/models/..%5C..%5Cetc%5Cpasswd",
    b"/v1/models/reviews/../../../etc/passwd",
    b"/v1/models/reviews/versions/..%2F..%2F..%2Fetc%2Fpasswd", b"/v1/models/%252e%252e%252fetc", b"//etc/passwd",
    b"/v1/models/..;/..;/etc/passwd", b"/v1/models/%00", b"/v1/models/reviews%00", b"/v1/models/reviews%00.pb",
    b"/v1/models/%C0%AE%C0%AE%2Fetc", b"/v1/models/%FF%FE", b"/v1/models/" + b"a" * 5000,
    b"/v1/models/" + b"a" * 100_000,
    b"/v1/models/a\x00b", b"/v1/models/\xd9\xa1", b"/v1/models/reviews%0D%0AX-Injected:%201",
]
VERSIONS = [b"-1", b"1e3", b"0x1", b"+1", b"1.0", b"%201", b"99999999999999999999", b"9" * 19, b"%D9%A1", b"%C2%B9",
            b"%EF%BC%91", b"", b"%2e%2e", b"..%2F1"]


@pytest.mark.parametrize("target", ESCAPES, ids=lambda t: repr(t[:40])[2:-1] + (f"..({len(t)})" if len(t) > 40 else ""))
def test_a_url_cannot_leave_the_served_folder(served, target):
    for method, suffix in (("GET", b""), ("POST", b":predict")):
        status, kind, body = raw_request(served.port, method, target + suffix, b'{"instances": ["fine"]}')
        assert 400 <= status < 500 and kind == "application/json", (status, kind, body[:200])
        assert "error" in json.loads(body)
        # neither the file nor the SavedModel outside was read or served
        assert b"SECRET-PASSWD" not in body and b"model_spec" not in body and b"model_version_status" not in body


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: repr(v[:24])[2:-1])
def test_only_ascii_version_numbers_name_a_version(served, version):
    for method, suffix in (("GET", b""), ("GET", b"/metadata"), ("POST", b":predict")):
        status, kind, body = raw_request(served.port, method, b"/v1/models/reviews/versions/" + version + suffix,
                                         b'{"instances": ["fine"]}')
        assert status == 404 and kind == "application/json", (status, kind, body[:200])
        assert "error" in json.loads(body)
    assert raw_request(served.port, "GET", b"/v1/models/reviews/versions/1")[0] == 200


def test_errors_quote_long_url_parts_only_in_part(served):
    status, _, body = raw_request(served.port, "GET", b"/v1/models/" + b"n" * 5000)
    assert status == 404 and len(body) < 400 and b"(5000 characters)" in body


def test_the_lambda_never_ran_in_the_server(served, bait):
    assert served.post(PREDICT, {"instances": TEXTS}).status_code == 200
    assert served.get("/readyz").json()["models"] == {"reviews": [1]}  # nothing from outside the folder
    assert not bait[1].exists()


@pytest.mark.parametrize("body, message", [
    (b"[" * 40_000 + b"]" * 40_000, "not valid JSON"),  # was a 500: RecursionError
    (b'{"instances": [' + b"7" * 5000 + b"]}", "not valid JSON"),  # was a 500: Python's limit on integer digits
    ({"instances": ["fine", "\ud800"]}, "instance 1 of input 'text' is not valid Unicode"),  # was a 500 for its batch
    ({"inputs": {"text": ["\udfff"]}}, "not valid Unicode"),
    ({"signature_name": None, "instances": ["fine"]}, '"signature_name" must be a string'),  # was taken as the default
    ({"signature_name": 0, "instances": ["fine"]}, '"signature_name" must be a string'),
])
def test_bodies_that_were_server_errors_or_taken_are_400(served, body, message):
    answer = served.post(PREDICT, body)
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text[:300]


def test_a_bad_instance_does_not_fail_the_requests_batched_with_it(served):
    bodies = [{"instances": [text]} for text in TEXTS * 4] + [{"instances": ["\ud800"]}] * 4
    with ThreadPoolExecutor(16) as pool:
        statuses = [answer.status_code for answer in pool.map(lambda body: served.post(PREDICT, body), bodies)]
    assert statuses == [200] * 12 + [400] * 4


def test_numbers_too_large_for_a_float_input_are_a_400():
    """Was a 500 (OverflowError) for models of number sequences: JSON integers have no size limit."""
    spec = tf.TensorSpec([None, None, 2], tf.float32, name="values")
    signature = SimpleNamespace(structured_input_signature=((), {"values": spec}))
    model = ServedModel("sensor", 1, ROOT, loaded=None, signature=signature)
    assert model.check([[[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]]]).shape == (2, 2, 2)  # ragged: padded
    for values in ([[[10 ** 400, 1.0]]], [[[1.0, 2.0]], [[10 ** 400, 1.0], [1.0, 1.0]]]):
        with pytest.raises(RequestError) as refused:
            model.check(values)
        assert refused.value.status == 400


@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/healthz", "GET"), ("GET", PREDICT, "POST"), ("DELETE", "/v1/models/reviews", "GET"),
    ("POST", "/v1/models/reviews/versions/1/metadata", "GET"),
])
def test_405_says_which_method_is_allowed(served, method, path, allowed):
    """RFC 9110 requires the Allow header; schemathesis found it missing."""
    answer = requests.request(method, served.url + path, timeout=30)
    assert answer.status_code == 405 and answer.headers["allow"] == allowed
    assert answer.json() == {"error": "Method Not Allowed"}


# ---------------------------------------------------------------------------------------------------
# The REST API fuzzed from its OpenAPI description


# The description the served folder's server sends (its model, version and input), made here so that
# pytest makes one test per operation at collection time: schemathesis' lazy ``from_fixture`` loader
# fails under pytest 9 (it sets ``Node._nodeid``, which pytest 9 no longer has).
DESCRIPTION = openapi({"reviews": {1: [tf.TensorSpec([None], tf.string, name="text")]}})
schema = schemathesis.openapi.from_dict(DESCRIPTION)


def test_the_server_sends_this_description(served):
    assert served.get("/openapi.json").json() == DESCRIPTION


@schema.parametrize()
@hypothesis.settings(max_examples=100, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_the_api_keeps_to_its_openapi_description(case, served):
    case.call_and_validate(base_url=served.url)


# ---------------------------------------------------------------------------------------------------
# A few seconds of the soak


@pytest.fixture(scope="module")
def server_soak():
    """benchmarks/server_soak.py, imported (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("server_soak", ROOT / "benchmarks" / "server_soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_soak_gets_no_5xx_and_no_wrong_answer(server_soak, tiny_run, reviews):
    mix = {"valid": 40, "huge_batch": 1, "malformed_json": 6, "wrong_input": 6, "unknown_model": 6, "oversized": 2,
           "slow": 4, "aborted": 4}
    result = server_soak.soak(tiny_run, seconds=5, warmup=1, clients=8, mix=mix, max_body_bytes=256 * 1024,
                              huge_batch=500, texts=reviews.text.tolist())
    assert result["server_errors_5xx"] == 0, result["statuses"]
    assert result["wrong_answers"] == 0, result["wrong_examples"]
    assert result["unexpected_statuses"] == 0, result["unexpected_examples"]
    assert set(result["requests_per_kind"]) == set(mix) and result["statuses_per_kind"]["valid"]["200"] > 50
    assert result["server_alive_at_end"] and result["server_exit_code"] == 0
