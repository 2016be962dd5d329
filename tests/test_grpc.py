"""TF Serving's gRPC API beside REST: `seqclf serve --grpc-port`, called with the official client stubs."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework.tensor_pb2 import TensorProto
from click.testing import CliRunner
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     prediction_service_pb2_grpc)

from seqclf.cli import main

from .test_serving import TEXTS, Server, free_port, three_kinds



@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    """The tiny text run beside the saved tagger and per-step runs, with the version label ``stable`` for 1."""
    root = three_kinds(tiny_run, tmp_path_factory.mktemp("grpc") / "models")
    server = Server(root, "--version-label", "stable=1", "--max-body-bytes", "100000", grpc=True)
    yield server
    assert server.stop() == 0


def code_and_details(call):
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details()


def test_text_predict_equals_rest_and_names_the_model_it_ran(server):
    server.assert_grpc_equals_rest("reviews", TEXTS, {"text": TEXTS})
    response = server.grpc_call("reviews", {"text": TEXTS[:1]}, label="stable")
    assert (response.model_spec.name, response.model_spec.version.value) == ("reviews", 1)
    assert response.model_spec.signature_name == "serving_default"
    only = server.grpc_predict("reviews", {"text": TEXTS[:2]}, version=1, output_filter=["label"])
    assert list(only) == ["label"] and only["label"].shape == (2,)


def test_token_lists_padded_with_empty_strings_get_each_its_own_tags(server):
    sentences = [["The", "cat", "sat", "."], ["Hi"]]
    outputs = server.assert_grpc_equals_rest("pos", sentences, {"tokens": [sentences[0], ["Hi", "", "", ""]]})
    assert outputs["label"].shape == (2, 4)  # as wide as the request, not as its batch
    alone = server.grpc_predict("pos", {"tokens": [["Hi"]]})
    assert alone["label"].tolist() == [outputs["label"][1][:1].tolist()]


def test_float_series_per_step_equal_rest(server):
    series = np.random.default_rng(0).normal(size=(2, 7, 6)).astype("float32")
    outputs = server.assert_grpc_equals_rest("steps", series.tolist(), {"values": series})
    assert outputs["probabilities"].shape[:2] == (2, 7)


@pytest.mark.parametrize("spec, inputs, code, message", [
    ({"name": "nope"}, {"text": ["x"]}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    ({"name": "reviews", "version": 7}, {"text": ["x"]}, grpc.StatusCode.NOT_FOUND, "Specific(reviews, 7)"),
    ({"name": "reviews", "label": "canary"}, {"text": ["x"]}, grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: canary"),
    ({"name": "reviews"}, {"text": [1.5, 2.5]}, grpc.StatusCode.INVALID_ARGUMENT, "to be string but float32"),
    ({"name": "reviews"}, {"txt": ["x"]}, grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {text}"),
    ({"name": "reviews"}, {"text": [["x"]]}, grpc.StatusCode.INVALID_ARGUMENT, "takes shape [-1]"),
    ({"name": "reviews", "output_filter": ["labels"]}, {"text": ["x"]}, grpc.StatusCode.INVALID_ARGUMENT,
     "output tensor alias not found in signature: labels"),
    ({"name": "pos"}, {"tokens": [["", ""]]}, grpc.StatusCode.INVALID_ARGUMENT, "non-empty lists"),
    ({"name": "steps"}, {"values": np.zeros((1, 3, 6))}, grpc.StatusCode.INVALID_ARGUMENT, "to be float32 but float64"),
    ({"name": "steps"}, {"values": np.zeros((1, 3, 5), "float32")}, grpc.StatusCode.INVALID_ARGUMENT,
     "takes shape [-1, -1, 6]"),
    # a few bytes declaring 1.2e9 values; a shape without values (read as str "", not bytes)
    ({"name": "steps"}, {"values": TensorProto(dtype=1, tensor_shape={"dim": [{"size": 1}, {"size": 200_000_000},
                                                                              {"size": 6}]})},
     grpc.StatusCode.INVALID_ARGUMENT, "more values than --max-body-bytes allows"),
    ({"name": "reviews"}, {"text": TensorProto(dtype=7, tensor_shape={"dim": [{"size": -2}]})},
     grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: text"),
    ({"name": "pos"}, {"tokens": TensorProto(dtype=7, tensor_shape={"dim": [{"size": 1}, {"size": 2}]})},
     grpc.StatusCode.INVALID_ARGUMENT, "non-empty lists"),
    ({"name": "reviews"}, {"text": TensorProto(dtype=99, tensor_shape={"dim": [{"size": 1}]})},
     grpc.StatusCode.INVALID_ARGUMENT, "an unknown dtype (99)"),
])
def test_bad_requests_get_tf_serving_status_codes_and_the_server_stays_up(server, spec, inputs, code, message):
    got, details = code_and_details(lambda: server.grpc_call(**spec, inputs=inputs))
    assert got == code and message in details
    assert server.get("/healthz").status_code == 200


def test_an_unknown_signature_is_a_failed_precondition_and_big_messages_are_refused(server):
    from tensorflow_serving.apis import predict_pb2

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "reviews", "attention"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(["x"]))
        code, details = code_and_details(lambda: stub.Predict(request, 30.0))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details == 'Serving signature key "attention" not found.'
        request.model_spec.signature_name = ""
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(["word " * 30_000]))  # over --max-body-bytes 100000
        assert code_and_details(lambda: stub.Predict(request, 30.0))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_metadata_is_the_saved_signature_and_status_lists_the_versions(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = "pos"
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        code, details = code_and_details(lambda: stub.GetModelMetadata(request, 30.0))
        assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT,
                                   "GetModelMetadataRequest must specify at least one metadata_field")
        request.metadata_field.append("signature_def")
        response = stub.GetModelMetadata(request, 30.0)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        assert response.metadata["signature_def"].Unpack(signatures)
        signature = signatures.signature_def["serving_default"]
        rest = server.get("/v1/models/pos/metadata").json()["metadata"]["signature_def"]["signature_def"]
        assert {k: v.name for k, v in signature.inputs.items()} == {
            k: v["name"] for k, v in rest["serving_default"]["inputs"].items()}
        assert sorted(signature.outputs) == ["label", "probabilities"]
        assert [d.size for d in signature.inputs["tokens"].tensor_shape.dim] == [-1, -1]

        status = model_service_pb2_grpc.ModelServiceStub(channel)
        asked = get_model_status_pb2.GetModelStatusRequest()
        asked.model_spec.name = "reviews"
        versions = status.GetModelStatus(asked, 30.0).model_version_status
        assert [(v.version, v.state) for v in versions] == [(1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
        asked.model_spec.name = "nope"
        assert code_and_details(lambda: status.GetModelStatus(asked, 30.0))[0] == grpc.StatusCode.NOT_FOUND


def test_concurrent_grpc_and_rest_clients_share_batches_and_each_gets_its_own_answer(server):
    expected = server.grpc_predict("reviews", {"text": TEXTS})["probabilities"]

    def one(i):
        text = TEXTS[i % len(TEXTS)]
        if i % 2:
            return i, np.array(server.post("/v1/models/reviews:predict", {"instances": [text]}).json()
                               ["predictions"][0]["probabilities"])
        return i, server.grpc_predict("reviews", {"text": [text]})["probabilities"][0]

    with ThreadPoolExecutor(16) as pool:
        for i, probabilities in pool.map(one, range(64)):
            np.testing.assert_allclose(probabilities, expected[i % len(TEXTS)], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options, message", [
    (["--grpc-port", "{port}"], "is the REST --port too"),
    (["--version-label", "stable"], "--version-label takes LABEL=VERSION"),
    (["--version-label", "stable=3"], "names version 3, which no served model has"),
])
def test_serve_refuses_bad_grpc_options_in_one_line(tiny_run, options, message):
    port = free_port()
    result = CliRunner().invoke(main, ["serve", str(tiny_run), "--port", str(port),
                                       *(o.format(port=port) for o in options)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_without_the_tf_serving_protos_grpc_is_refused_in_one_line_saying_how_to_install(tiny_run):
    code = ("import sys; sys.modules['tensorflow_serving'] = None; from seqclf.cli import main; "
            f"main(['serve', {str(tiny_run)!r}, '--port', '{free_port()}', '--grpc-port', '{free_port()}'])")
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert answer.returncode == 2, answer.stderr[-500:]
    assert 'pip install --no-deps "tensorflow-serving-api~=' in answer.stderr and "Traceback" not in answer.stderr
