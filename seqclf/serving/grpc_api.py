"""TensorFlow Serving's gRPC API over the REST server's models and batchers.

``PredictionService/Predict`` and ``GetModelMetadata`` and ``ModelService/GetModelStatus``, with the
request and answer messages of the official ``tensorflow-serving-api`` package (its generated stubs),
served by ``grpc.aio`` in the REST server's event loop: a gRPC request joins the same batches as REST
requests. Errors carry TF Serving's status codes and messages: ``NOT_FOUND`` for an unknown model or
version, ``INVALID_ARGUMENT`` for a wrong input name, dtype or shape, ``FAILED_PRECONDITION`` for an
unknown signature. Classify, Regress, MultiInference and HandleReloadConfigRequest answer
``UNIMPLEMENTED`` (the generated servicers' default): seqclf exports predict signatures only.
"""

import functools
import logging
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from ..errors import ConfigError
from ..export import SIGNATURE
from .model import RequestError, decoded, shape_text

log = logging.getLogger("seqclf.serving")
STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
          412: grpc.StatusCode.FAILED_PRECONDITION}  # a RequestError's HTTP status as a gRPC status code

try:
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                         predict_pb2, prediction_service_pb2_grpc)
except ImportError as problem:
    _minor = ".".join(tf.__version__.split(".")[:2])
    raise ConfigError(f"--grpc-port needs TF Serving's gRPC API ({problem}); install it with pip install --no-deps "
                      f'"tensorflow-serving-api~={_minor}.0" (--no-deps: it requires the "tensorflow" package, '
                      "which would install a second TensorFlow beside tensorflow-cpu)") from None


async def start_grpc(app, address):
    """Start a ``grpc.aio`` server answering for ``app`` (a :class:`~seqclf.serving.app.ModelServer`) on
    ``address`` ("host:port"); return it (``await server.stop(grace)`` ends it)."""
    # Messages as large as a REST body may be (grpc's own default is 4 MiB); a connection without a call for the
    # request timeout is closed (clients reconnect by themselves), as is one that has not finished its handshake
    # by then; no second server on the same port.
    timeout_ms = max(1, int(app.request_timeout * 1000))
    options = [("grpc.max_receive_message_length", app.max_body_bytes), ("grpc.max_connection_idle_ms", timeout_ms),
               ("grpc.server_handshake_timeout_ms", timeout_ms), ("grpc.so_reuseport", 0)]
    server = grpc.aio.server(options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(app), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(app), server)
    server.add_insecure_port(address)
    await server.start()
    log.info("gRPC on %s", address)
    return server


def served_model(app, spec):
    """The served model a ``ModelSpec`` names (version, version label, or the latest)."""
    which = spec.WhichOneof("version_choice")
    version = str(spec.version.value) if which == "version" else None
    return app.lookup(spec.name, version, spec.version_label if which == "version_label" else None)


def answering(method):
    """A servicer method whose :class:`RequestError` ends the call with its status code, and any other failure with
    ``INTERNAL`` (logged): never grpc's ``UNKNOWN`` with a traceback."""

    @functools.wraps(method)
    async def call(self, request, context):
        try:
            return await method(self, request, context)
        except RequestError as error:
            await context.abort(STATUS.get(error.status, grpc.StatusCode.INTERNAL), str(error))
        except Exception as error:
            log.exception("gRPC %s failed", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {error}")

    return call


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService``: Predict and GetModelMetadata."""

    def __init__(self, app):
        self.app = app

    @answering
    async def Predict(self, request, context):
        model = served_model(self.app, request.model_spec)
        signature = request.model_spec.signature_name or SIGNATURE
        if signature != SIGNATURE:
            raise RequestError(f'Serving signature key "{signature}" not found.', 412)
        instances, width = to_instances(model, request.inputs, self.app.max_body_bytes)
        names = output_names(model, request.output_filter)
        model.check(instances)  # a wrong shape is refused here, before it joins a batch
        outputs = await self.app.batchers[model.name, model.version].predict(instances)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = SIGNATURE
        per_step = model.task.label_rank == 2
        for name in names:
            value = outputs[name][:, :width] if per_step else outputs[name]  # as long as this request's longest row
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    @answering
    async def GetModelMetadata(self, request, context):
        model = served_model(self.app, request.model_spec)
        if not request.metadata_field:
            raise RequestError("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise RequestError(f"Metadata field {field} is not supported")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        signatures.signature_def[SIGNATURE].CopyFrom(signature_def(str(model.path)))
        response.metadata["signature_def"].Pack(signatures)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService``: GetModelStatus."""

    def __init__(self, app):
        self.app = app

    @answering
    async def GetModelStatus(self, request, context):
        spec = request.model_spec
        if spec.WhichOneof("version_choice"):
            models = [served_model(self.app, spec)]
        elif spec.name in self.app.served:
            models = sorted(self.app.served[spec.name].values(), key=lambda m: -m.version)
        else:
            raise RequestError(f"Could not find any versions of model {spec.name}", 404)
        response = get_model_status_pb2.GetModelStatusResponse()
        for model in models:
            status = response.model_version_status.add()
            status.version = model.version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


def to_instances(model, inputs, most_values):
    """The request's ``TensorProto`` inputs as the instances a REST request gives (one per row), and the width of
    its longest row (what a per-step answer is cut to: a token row without its "" padding). A tensor may declare at
    most ``most_values`` values (a message of a few bytes could otherwise declare a shape of billions)."""
    expected = sorted(model.input_specs)
    if sorted(inputs) != expected:
        sent = sorted(inputs)
        raise RequestError(f"input size does not match signature: {len(sent)}!={len(expected)} "
                           f"len({{{','.join(sent)}}}) != len({{{','.join(expected)}}}). "
                           f"Sent extra: {{{','.join(sorted(set(sent) - set(expected)))}}}. "
                           f"Missing but required: {{{','.join(sorted(set(expected) - set(sent)))}}}.")
    arrays = {}
    for number, name in enumerate(expected):
        spec, proto = model.input_specs[name], inputs[name]
        if proto.dtype != spec.dtype.as_datatype_enum:
            given = _dtype_name(proto.dtype)
            raise RequestError(f"Expects arg[{number}] ({name}) to be {spec.dtype.name} but {given} is provided")
        dims = [dim.size for dim in proto.tensor_shape.dim]
        if any(d < 0 for d in dims) or np.prod(dims, dtype=np.float64) > most_values:
            raise RequestError(f"tensor parsing error: {name} (shape {dims}: negative, or more values than "
                               f"--max-body-bytes allows)")
        try:
            arrays[name] = tf.make_ndarray(proto)
        except (TypeError, ValueError):
            raise RequestError(f"tensor parsing error: {name}") from None
        if arrays[name].ndim != spec.shape.rank or arrays[name].shape[0] == 0:
            raise RequestError(f"input {name!r} takes shape {shape_text(spec.shape)} with at least one row; got "
                               f"{list(arrays[name].shape)}")
    if len({array.shape[0] for array in arrays.values()}) > 1:
        raise RequestError(f"the inputs {', '.join(expected)} must have the same number of rows")
    rows = {name: _decoded(array, name) for name, array in arrays.items()}
    first = rows[model.input_name]
    if isinstance(first[0], list):  # token lists: each row without the "" padding of its tokens
        lengths = [_real_length(tokens) for tokens in first]
        rows = {name: [row[:n] for row, n in zip(values, lengths)] for name, values in rows.items()}
    instances = ([dict(zip(rows, values)) for values in zip(*rows.values())] if model.several_inputs
                 else rows[model.input_name])
    return instances, max(len(step) for step in model.steps(instances))


def _decoded(array, name):
    """One instance per row: texts decoded (token rows as lists), numbers as they are."""
    if array.dtype != object:
        return list(array)
    try:  # (a string tensor without values comes back filled with str "" rather than bytes)
        texts = decoded(array)
    except UnicodeDecodeError:
        raise RequestError(f"input {name!r} holds bytes that are not UTF-8 text") from None
    return [row.tolist() for row in texts] if texts.ndim > 1 else texts.tolist()


def _real_length(tokens):
    return max((i + 1 for i, token in enumerate(tokens) if token != ""), default=0)


def output_names(model, output_filter):
    """The outputs a request asks for (``output_filter``; every output when it names none), checked as TF Serving
    checks them."""
    known = sorted(model.signature.structured_outputs)
    names = list(output_filter) or known
    for name in names:
        if name not in known:
            raise RequestError(f"output tensor alias not found in signature: {name} Outputs expected to be in the set "
                               f"{{{','.join(known)}}}.")
    if len(set(names)) < len(names):
        raise RequestError(f"duplicate output tensor alias: {next(n for n in names if names.count(n) > 1)}")
    return names


@functools.lru_cache(maxsize=None)
def signature_def(path):
    """The ``serving_default`` SignatureDef as written in the SavedModel at ``path`` (its real tensor names; the
    model's loading checked that it has one), read once."""
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    return next(graph.signature_def[SIGNATURE] for graph in saved.meta_graphs if SIGNATURE in graph.signature_def)


def _dtype_name(enum):
    try:
        return tf.dtypes.as_dtype(enum).name if enum else "no dtype"
    except TypeError:
        return f"an unknown dtype ({enum})"
