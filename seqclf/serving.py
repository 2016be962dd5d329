"""An HTTP server speaking TensorFlow Serving's REST API for exported seqclf models.

Endpoints (as TensorFlow Serving defines them, plus health checks):

- ``GET  /v1/models/{name}[/versions/{v}]``           model status
- ``GET  /v1/models/{name}[/versions/{v}]/metadata``  signature: input and output names, dtypes, shapes
- ``POST /v1/models/{name}[/versions/{v}]:predict``   row (``instances``) or columnar (``inputs``) requests
- ``GET  /healthz``, ``/readyz``, ``/openapi.json``

Concurrent requests are grouped into batches (at most ``max_batch_size`` instances, waiting at
most ``max_wait_ms`` for more) and run through the SavedModel's signature function directly.
"""

import asyncio
import json
import logging
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from .data.adapters import padded
from .data.sensor import nan_padded
from .errors import RunDirectoryError
from .export import SIGNATURE

log = logging.getLogger(__name__)
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# A version is a number in ASCII digits, as in TensorFlow Serving (int64: at most 19 digits). Not
# str.isdigit(): that also takes other scripts' digits ("١", "²"), which int() then reads as numbers.
VERSION = re.compile(r"[0-9]{1,19}")


class RequestError(Exception):
    """A request the server cannot answer; ``status`` is the HTTP status code, ``headers`` extra response headers."""

    def __init__(self, message, status=400, headers=()):
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


@dataclass
class ServedModel:
    """One version of one model: its loaded SavedModel and serving signature."""

    name: str
    version: int
    path: Path
    loaded: object = field(repr=False)
    signature: object = field(repr=False)
    per_step: bool = False  # the model labels every step: its ``label`` output has a time axis

    @classmethod
    def load(cls, name, version, path):
        loaded = tf.saved_model.load(str(path))
        if SIGNATURE not in loaded.signatures:
            raise RunDirectoryError(f"{path} has no {SIGNATURE!r} signature")
        signature = loaded.signatures[SIGNATURE]
        per_step = signature.structured_outputs["label"].shape.rank == 2
        return cls(name, version, Path(path), loaded, signature, per_step)

    @property
    def input_name(self):
        return next(iter(self.signature.structured_input_signature[1]))

    @property
    def input_spec(self):
        return self.signature.structured_input_signature[1][self.input_name]

    def check(self, values):
        """Check ``values`` (a list of instances) against the signature's input; return them as an array."""
        spec = self.input_spec
        if spec.dtype == tf.string and spec.shape.rank == 2:
            return self._token_lists(values)
        if spec.dtype == tf.string:
            if not all(isinstance(v, str) for v in values):
                raise RequestError(f"input {self.input_name!r} takes strings; got {_kinds(values)}")
            self._check_unicode(values, values)
            return np.array(values, dtype=object)
        try:
            array = np.asarray(values, dtype=spec.dtype.as_numpy_dtype)
        except (TypeError, ValueError, OverflowError):
            array = self._pad(values)
        if not spec.shape.is_compatible_with(array.shape):
            raise RequestError(f"input {self.input_name!r} takes shape {_shape(spec.shape)}; got {list(array.shape)}")
        return array

    def _check_unicode(self, instances, strings):
        """JSON may escape a lone surrogate ("\\ud800"): no text TensorFlow takes, and it would fail the batch."""
        try:
            "".join(strings).encode("utf-8")
        except UnicodeEncodeError:
            bad = next(i for i, v in enumerate(instances) if not _encodable("".join(v)))
            raise RequestError(f"instance {bad} of input {self.input_name!r} is not valid Unicode text "
                               "(it holds a lone surrogate)") from None

    def _token_lists(self, values):
        """Lists of tokens (a tagger's input) of any lengths, padded with "" to the longest (masked by the model)."""
        if not all(isinstance(v, list) and v and all(isinstance(t, str) and t for t in v) for v in values):
            raise RequestError(f"input {self.input_name!r} takes lists of tokens: non-empty lists of non-empty strings")
        flat = [token for tokens in values for token in tokens]
        self._check_unicode(values, flat)
        return padded(np.array(flat, dtype=object), [len(tokens) for tokens in values], "", object)

    def _pad(self, values):
        """Sequences of different lengths, for an input with a free time axis: padded with NaN (masked by the model)."""
        spec = self.input_spec
        problem = RequestError(f"input {self.input_name!r} takes {spec.dtype.name} arrays of shape "
                               f"{_shape(spec.shape)}; got values that are not one")
        if spec.shape.rank != 3 or spec.shape[1] is not None or not spec.dtype.is_floating:
            raise problem
        try:
            sequences = [np.asarray(value, dtype=spec.dtype.as_numpy_dtype) for value in values]
        except (TypeError, ValueError, OverflowError):
            raise problem from None
        if any(s.ndim != 2 or not spec.shape[1:].is_compatible_with(s.shape) for s in sequences):
            raise problem
        return nan_padded(sequences, spec.shape[2], spec.dtype.as_numpy_dtype)

    def run(self, values):
        """The signature's outputs for a batch of instances, as NumPy arrays (strings decoded)."""
        # Each request was checked on arrival; texts need no second look, numbers and token lists from
        # several requests must still stack (and pad) into one array of the signature's shape.
        spec = self.input_spec
        batch = values if spec.dtype == tf.string and spec.shape.rank == 1 else self.check(values)
        outputs = self.signature(**{self.input_name: tf.constant(batch, dtype=spec.dtype)})
        return {key: _numpy(value) for key, value in outputs.items()}

    def metadata(self):
        """``GetModelMetadata``'s answer, as TensorFlow Serving's REST API gives it."""
        inputs = {self.input_name: _tensor_info(self.input_spec, f"{SIGNATURE}_{self.input_name}:0")}
        outputs = {key: _tensor_info(spec, f"StatefulPartitionedCall:{i}")
                   for i, (key, spec) in enumerate(sorted(self.signature.structured_outputs.items()))}
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: {
                "inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict",
            }}}},
        }


def find_models(path, name=None):
    """Discover the models under ``path``: ``{name: {version: directory}}``.

    ``path`` may be a run directory (``export/<name>/<v>``), an export directory of numbered
    versions (``<v>/saved_model.pb``), a single version, or a directory holding several of these.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(f"{path} is not a directory; pass a run directory or an export directory")
    found = {}
    for model_name, versions in _walk(path):
        found.setdefault(name or model_name, {}).update(versions)
    if not found:
        raise RunDirectoryError(f"no SavedModel found under {path}; pass a run directory or export/<name>")
    if name and len({n for n, _ in _walk(path)}) > 1:
        raise RunDirectoryError(f"{path} holds several models; --name applies to one model only")
    for model_name in found:
        if not MODEL_NAME.match(model_name):
            raise RunDirectoryError(f"model name {model_name!r} may only hold letters, digits, '_', '-' and '.'")
    return found


def _walk(path):
    """Yield ``(name, {version: directory})`` for every model under ``path``."""
    if (path / "saved_model.pb").exists():
        numbered = VERSION.fullmatch(path.name)
        yield (path.parent.name if numbered else path.name), {int(path.name) if numbered else 1: path}
        return
    versions = {int(p.name): p for p in path.iterdir() if VERSION.fullmatch(p.name) and (p / "saved_model.pb").exists()}
    if versions:
        yield path.name, versions
        return
    if (path / "export").is_dir():
        yield from _walk(path / "export")
        return
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from _walk(child)


class Batcher:
    """Groups concurrent requests of one model into batches and runs them one batch at a time.

    Parameters
    ----------
    model : ServedModel
    max_batch_size : int
        Most instances run together (a single larger request still runs, alone).
    max_wait_ms : float
        How long the first request of a batch waits for others, when the previous batch held
        more than one request.
    """

    def __init__(self, model, max_batch_size=64, max_wait_ms=5.0):
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{model.name}")
        self.task = None

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self):
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def predict(self, instances):
        """Outputs for ``instances`` (already checked), computed in a shared batch."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((instances, future))
        return await future

    async def _work(self):
        loop = asyncio.get_running_loop()
        previous = 1
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            # Wait for company only under concurrent load (the last batch held several requests):
            # a lone client is not made to wait for others who will not come.
            deadline = loop.time() + (self.max_wait if previous > 1 else 0.0)
            while size < self.max_batch_size:
                remaining = deadline - loop.time()
                try:
                    item = self.queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self.queue.get(), remaining)
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(item)
                size += len(item[0])
            previous = len(batch)
            await self._run(loop, batch)

    async def _run(self, loop, batch):
        values = [value for instances, _ in batch for value in instances]
        try:
            outputs = await loop.run_in_executor(self.executor, self.model.run, values)
        except RequestError as error:
            # One bad request must not fail the others: retry each alone to find it.
            if len(batch) > 1:
                for item in batch:
                    await self._run(loop, [item])
            elif not batch[0][1].done():
                batch[0][1].set_exception(error)
            return
        except Exception as error:  # a model failure is reported to every caller of the batch
            log.exception("batch of %d failed", len(values))
            for _, future in batch:
                if not future.done():
                    future.set_exception(RequestError(f"the model failed: {error}", 500))
            return
        start = 0
        for instances, future in batch:
            end = start + len(instances)
            if not future.done():
                future.set_result({key: value[start:end] for key, value in outputs.items()})
            start = end


ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<action>:predict|/metadata)?$")
JSON_HEADERS = [(b"content-type", b"application/json")]


class ModelServer:
    """The ASGI application serving ``models`` (``{name: {version: directory}}``), for uvicorn.

    A plain ASGI callable rather than a web framework: the predict path is the hot path, and
    every layer a framework adds costs throughput when the event loop is the bottleneck.
    """

    def __init__(self, models, max_batch_size=64, max_wait_ms=5.0, max_body_bytes=10 * 1024 * 1024):
        self.models = models
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.max_body_bytes = max_body_bytes
        self.served = {}
        self.batchers = {}
        self.ready = False
        self.openapi = OPENAPI  # until the models are loaded; then narrowed to them
        self.fixed = {"/healthz": self._healthz, "/readyz": self._readyz, "/openapi.json": lambda: (200, self.openapi)}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            extra = []
            try:
                status, payload = await self._handle(scope, receive)
            except RequestError as error:
                status, payload, extra = error.status, {"error": str(error)}, error.headers
            except Exception as error:  # never a bare 500 page: always TF Serving's JSON error
                log.exception("%s %s failed", scope["method"], _clip(scope["path"]))
                status, payload = 500, {"error": f"internal error: {error}"}
            body = json.dumps(payload, separators=(",", ":")).encode()
            headers = JSON_HEADERS + extra + [(b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._load()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for batcher in self.batchers.values():
                    await batcher.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _load(self):
        loop = asyncio.get_running_loop()
        for name, versions in self.models.items():
            for version, directory in versions.items():
                model = await loop.run_in_executor(None, ServedModel.load, name, version, directory)
                self.served.setdefault(name, {})[version] = model
                self.batchers[name, version] = Batcher(model, self.max_batch_size, self.max_wait_ms)
                self.batchers[name, version].start()
                log.info("serving %s version %d from %s", name, version, directory)
        self.openapi = openapi({name: {v: tf.TensorSpec(m.input_spec.shape, m.input_spec.dtype, m.input_name)
                                       for v, m in versions.items()} for name, versions in self.served.items()})
        self.ready = True

    async def _handle(self, scope, receive):
        path, method = scope["path"], scope["method"]
        if path in self.fixed:
            _expect(method, "GET")
            return self.fixed[path]()
        match = ROUTE.match(path)
        if match is None:
            raise RequestError("Not Found", 404)
        action = match["action"]
        _expect(method, "POST" if action == ":predict" else "GET")
        model = self._lookup(match["name"], match["version"])
        if action == ":predict":
            return 200, await self._predict(model, await _read_body(scope, receive, self.max_body_bytes))
        if action == "/metadata":
            return 200, model.metadata()
        versions = [model] if match["version"] else self.served[model.name].values()
        return 200, {"model_version_status": [
            {"version": str(m.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for m in sorted(versions, key=lambda m: -m.version)
        ]}

    def _lookup(self, name, version):
        """The loaded model named in a URL: only ever a key of ``served``, never a path on disk."""
        if name not in self.served:
            raise RequestError(f"Servable not found for request: Latest({_clip(name)})", 404)
        if version is None:
            return self.served[name][max(self.served[name])]
        if not VERSION.fullmatch(version) or int(version) not in self.served[name]:
            raise RequestError(f"Servable not found for request: Specific({name}, {_clip(version)})", 404)
        return self.served[name][int(version)]

    async def _predict(self, model, body):
        instances, columnar = _parse_predict(body, model)
        if not instances:
            raise RequestError("the request has no instances")
        model.check(instances)  # reject a wrong dtype or shape here, before batching
        outputs = await self.batchers[model.name, model.version].predict(instances)
        if model.per_step:  # each instance gets as many steps as it sent, whatever the batch was padded to
            lists = {key: [row[:len(instance)].tolist() for row, instance in zip(value, instances)]
                     for key, value in sorted(outputs.items())}
        else:
            lists = {key: value.tolist() for key, value in sorted(outputs.items())}
        if columnar:
            return {"outputs": lists}
        return {"predictions": [{key: values[i] for key, values in lists.items()} for i in range(len(instances))]}

    def _healthz(self):
        return 200, {"status": "alive"}

    def _readyz(self):
        if not self.ready:
            return 503, {"status": "loading"}
        return 200, {"status": "ready", "models": {n: sorted(v) for n, v in self.served.items()}}


def _expect(method, allowed):
    if method != allowed:
        raise RequestError("Method Not Allowed", 405, [(b"allow", allowed.encode())])


def _clip(text, limit=100):
    """``text`` cut to ``limit`` characters, for error messages that quote a URL part."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


async def _read_body(scope, receive, limit):
    declared = dict(scope["headers"]).get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(f"request body of {int(declared)} bytes is over the limit of {limit} bytes", 413)
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            raise RequestError(f"request body is over the limit of {limit} bytes", 413)
        if not message.get("more_body"):
            return bytes(body)


def _parse_predict(body, model):
    """Return ``(instances, columnar)`` from a predict request body."""
    try:
        request = json.loads(body)
    # ValueError: also UnicodeDecodeError and Python's limit on digits in an integer; RecursionError: nesting
    except (ValueError, RecursionError) as error:
        raise RequestError(f"the body is not valid JSON: {error}") from None
    if not isinstance(request, dict):
        raise RequestError('the body must be a JSON object with "instances" or "inputs"')
    signature = request.get("signature_name", "")
    if not isinstance(signature, str):
        raise RequestError(f'"signature_name" must be a string; got {json.dumps(signature)[:100]}')
    if signature not in ("", SIGNATURE):
        raise RequestError(f"serving signature name: {signature!r} not found in signature def")
    if ("instances" in request) == ("inputs" in request):
        raise RequestError('the body must hold exactly one of "instances" (row format) or "inputs" (columnar format)')
    name = model.input_name
    if "instances" in request:
        instances = request["instances"]
        if not isinstance(instances, list):
            raise RequestError('"instances" must be a list')
        return [_unwrap(item, name) for item in instances], False
    inputs = request["inputs"]
    if isinstance(inputs, dict):
        if set(inputs) != {name}:
            raise RequestError(f'"inputs" must name the input {name!r}; got {", ".join(map(repr, inputs)) or "none"}')
        inputs = inputs[name]
    if not isinstance(inputs, list):
        raise RequestError('"inputs" must be a list (or an object holding one list per input)')
    return inputs, True


def _unwrap(item, name):
    if isinstance(item, dict):
        if set(item) != {name}:
            raise RequestError(f"each instance object must hold the input {name!r} only; got {', '.join(map(repr, item))}")
        return item[name]
    return item


def _numpy(tensor):
    array = tensor.numpy()
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array)
    return array


def _encodable(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kinds(values):
    return ", ".join(sorted({type(v).__name__ for v in values}))


def _shape(shape):
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def _tensor_info(spec, tensor_name):
    return {
        "dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
        "tensor_shape": {"dim": [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape.as_list()],
                         "unknown_rank": False},
        "name": tensor_name,
    }


def openapi(inputs=None):
    """The OpenAPI description of the server.

    ``inputs`` (``{name: {version: input TensorSpec}}``, the spec named after the signature's input)
    narrows it to what one server serves: its model names and versions, and request bodies of its
    inputs' types and shapes. Without it, any name, version and JSON value is described.
    """
    name, version = {"type": "string", "pattern": MODEL_NAME.pattern}, {"type": "integer", "minimum": 0}
    value, instance = {}, {}  # one raw input; one item of "instances"
    named_columns = {"type": "object", "minProperties": 1, "maxProperties": 1,
                     "additionalProperties": {"type": "array", "minItems": 1, "items": {}}}
    if inputs:
        specs = [spec for versions in inputs.values() for spec in versions.values()]
        name = {"type": "string", "enum": sorted(inputs)}
        version = {"type": "integer", "enum": sorted({v for versions in inputs.values() for v in versions})}
        value = _any_of([_value_schema(spec) for spec in specs])
        instance = _any_of([_any_of([_value_schema(spec), _named(spec.name, _value_schema(spec))]) for spec in specs])
        named_columns = _any_of([_named(spec.name, {"type": "array", "minItems": 1, "items": _value_schema(spec)})
                                 for spec in specs])
    columns = {"type": "array", "minItems": 1, "items": value}
    error = {"$ref": "#/components/responses/Error"}
    schemas = {
        "PredictRequest": {
            "type": "object", "description": "exactly one of instances (row format) and inputs (columnar format)",
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
            "properties": {
                "signature_name": {"type": "string", "enum": [SIGNATURE, ""]},
                "instances": {"type": "array", "minItems": 1, "items": instance,
                              "description": "one raw input per item, or an object {input name: raw input}"},
                "inputs": {"anyOf": [columns, named_columns],
                           "description": "a list of raw inputs, or an object {input name: list of raw inputs}"},
            }},
        "PredictResponse": {
            "type": "object", "oneOf": [{"required": ["predictions"]}, {"required": ["outputs"]}],
            "properties": {
                "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                "outputs": {"type": "object", "required": ["label", "probabilities"], "properties": {
                    "label": {"type": "array", "items": {"$ref": "#/components/schemas/Label"}},
                    "probabilities": {"type": "array", "items": {"$ref": "#/components/schemas/Probabilities"}}}},
            }},
        "Prediction": {"type": "object", "required": ["label", "probabilities"], "properties": {
            "label": {"$ref": "#/components/schemas/Label"},
            "probabilities": {"$ref": "#/components/schemas/Probabilities"}}},
        "Label": {"description": "a class name; a list of them (one per step) for models that label every step",
                  "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "Probabilities": {"type": "array", "description": "one per class; one such list per step for per-step models",
                          "items": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]}},
        "ModelStatus": {"type": "object", "required": ["model_version_status"], "properties": {
            "model_version_status": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["version", "state", "status"], "properties": {
                    "version": {"type": "string", "pattern": "^[0-9]+$"},
                    "state": {"type": "string", "enum": ["AVAILABLE"]},
                    "status": {"type": "object", "required": ["error_code", "error_message"], "properties": {
                        "error_code": {"type": "string"}, "error_message": {"type": "string"}}}}}}}},
        "ModelMetadata": {"type": "object", "required": ["model_spec", "metadata"], "properties": {
            "model_spec": {"type": "object", "required": ["name", "signature_name", "version"], "properties": {
                "name": {"type": "string"}, "signature_name": {"type": "string"},
                "version": {"type": "string", "pattern": "^[0-9]+$"}}},
            "metadata": {"type": "object", "required": ["signature_def"], "properties": {
                "signature_def": {"type": "object", "required": ["signature_def"], "properties": {
                    "signature_def": {"type": "object", "required": [SIGNATURE]}}}}}}},
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "Ready": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["ready", "loading"]},
            "models": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}}}},
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
    }

    def answer(description, schema):
        return {"description": description, "content": {"application/json": {"schema": {
            "$ref": f"#/components/schemas/{schema}"}}}}

    paths = {}
    name = {"name": "name", "in": "path", "required": True, "schema": name}
    version = {"name": "version", "in": "path", "required": True, "schema": version}
    for prefix, parameters, which in (("/v1/models/{name}", [name], "the latest version"),
                                      ("/v1/models/{name}/versions/{version}", [name, version], "one version")):
        paths[prefix + ":predict"] = {"post": {
            "summary": f"Predict with {which}", "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/PredictRequest"}}}},
            "responses": {"200": answer("predictions (row format) or outputs (columnar format)", "PredictResponse"),
                          "400": error, "404": error, "413": error, "500": error},
        }}
        paths[prefix] = {"get": {"summary": f"Status of {which} (all versions without /versions)",
                                 "parameters": parameters,
                                 "responses": {"200": answer("model_version_status", "ModelStatus"), "404": error}}}
        paths[prefix + "/metadata"] = {"get": {
            "summary": f"Signature of {which}", "parameters": parameters,
            "responses": {"200": answer("model_spec and signature_def", "ModelMetadata"), "404": error}}}
    paths["/healthz"] = {"get": {"summary": "Liveness", "responses": {"200": answer("alive", "Health")}}}
    paths["/readyz"] = {"get": {"summary": "Readiness: models loaded", "responses": {
        "200": answer("ready", "Ready"), "503": answer("still loading", "Ready")}}}
    paths["/openapi.json"] = {"get": {"summary": "This description", "responses": {
        "200": {"description": "OpenAPI 3.0 document",
                "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "seqclf model server", "version": "1",
                 "description": "TensorFlow Serving's REST API (predict, status, metadata) for seqclf exports."},
        "paths": paths,
        "components": {"schemas": schemas, "responses": {"Error": answer("error", "Error")}},
    }


def _any_of(schemas):
    unique = list({json.dumps(schema, sort_keys=True): schema for schema in schemas}.values())
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def _named(key, schema):
    return {"type": "object", "required": [key], "additionalProperties": False, "properties": {key: schema}}


def _value_schema(spec):
    """JSON schema of one raw input of ``spec`` (its batch axis left out)."""
    if spec.shape.rank is None:
        return {}
    if spec.dtype == tf.string:  # a text, or a list of tokens ("" is the padding, not a token)
        schema = {"type": "string", **({"minLength": 1} if spec.shape.rank > 1 else {})}
    elif spec.dtype.is_floating:
        schema = {"type": "number"}
    elif spec.dtype.is_integer:
        schema = {"type": "integer"}
    else:
        return {}
    for size in reversed(spec.shape.as_list()[1:]):
        schema = {"type": "array", "minItems": size or 1, "items": schema, **({"maxItems": size} if size else {})}
    return schema


OPENAPI = openapi()


def serve(path, host="127.0.0.1", port=8501, name=None, max_batch_size=64, max_wait_ms=5.0,
          max_body_bytes=10 * 1024 * 1024):
    """Serve the models under ``path`` until SIGTERM or Ctrl-C (requests in flight finish first)."""
    import uvicorn

    models = find_models(path, name)
    app = ModelServer(models, max_batch_size, max_wait_ms, max_body_bytes)
    started = time.perf_counter()
    log.info("models: %s", ", ".join(f"{n} (versions {', '.join(map(str, sorted(v)))})" for n, v in models.items()))
    # uvicorn shuts down gracefully, then re-raises the signal it caught; end with exit code 0 then.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_quietly)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30,
                    http=_http_protocol())
    finally:
        log.info("server stopped after %.0f s", time.perf_counter() - started)


def _http_protocol():
    """uvicorn's HTTP protocol, made to refuse what its parser cannot read (a NUL or raw non-ASCII byte in
    the URL, a malformed request line) with a JSON error like every other answer, not a plain-text one."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn's h11 protocol, whose 400 stays plain text
        return "auto"

    class JsonErrorProtocol(HttpToolsProtocol):
        def send_400_response(self, msg):
            body = json.dumps({"error": msg}).encode()
            head = [b"HTTP/1.1 400 Bad Request",
                    *(name + b": " + value for name, value in self.server_state.default_headers),
                    b"content-type: application/json", b"content-length: " + str(len(body)).encode(),
                    b"connection: close"]
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            self.transport.close()

    return JsonErrorProtocol


def _exit_quietly(signum, frame):
    raise SystemExit(0)
