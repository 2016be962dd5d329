"""The ASGI application: TensorFlow Serving's REST routes over the loaded models and their batchers."""

import asyncio
import json
import logging
import re

import tensorflow as tf

from ..export import SIGNATURE
from .batcher import Batcher
from .model import VERSION, RequestError, ServedModel
from .openapi import OPENAPI, openapi
from .page import page

log = logging.getLogger("seqclf.serving")


ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                   r"(?P<action>:predict|/metadata)?$")
JSON_HEADERS = [(b"content-type", b"application/json")]
PAGES = ("/", "/ui")  # the page to try the models in a browser
GRPC_GRACE = 5  # seconds gRPC calls in flight get to finish at shutdown, after HTTP's requests have finished


class ModelServer:
    """The ASGI application serving ``models`` (``{name: {version: directory}}``), for uvicorn.

    A plain ASGI callable rather than a web framework: the predict path is the hot path, and
    every layer a framework adds costs throughput when the event loop is the bottleneck.
    """

    def __init__(self, models, max_batch_size=64, max_wait_ms=5.0, max_body_bytes=10 * 1024 * 1024, labels=None,
                 request_timeout=30.0, grpc_address=None):
        self.models = models
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.max_body_bytes = max_body_bytes
        self.labels = dict(labels or {})  # version labels, {label: version}, for every model holding that version
        self.request_timeout = request_timeout
        self.grpc_address = grpc_address  # "host:port" to answer TF Serving's gRPC API on as well, or None
        self.grpc_server = None
        self.page = None  # (html, content security policy) once the models are loaded
        self.served = {}
        self.batchers = {}
        self.ready = False
        self.openapi = OPENAPI  # until the models are loaded; then narrowed to them
        self.fixed = {"/healthz": self._healthz, "/readyz": self._readyz, "/openapi.json": lambda: (200, self.openapi)}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"] in PAGES and scope["method"] == "GET":
            await self._page(send)
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

    async def _page(self, send):
        if not self.ready:
            body, headers = b"the models are loading; reload in a moment", [(b"content-type", b"text/plain")]
            status = 503
        else:
            body, policy = self.page
            status, headers = 200, [(b"content-type", b"text/html; charset=utf-8"),
                                    (b"content-security-policy", policy.encode())]
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + [(b"content-length", str(len(body)).encode())]})
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
                if self.grpc_server is not None:  # its calls in flight finish first: they use the batchers
                    await self.grpc_server.stop(grace=GRPC_GRACE)
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
        self.openapi = openapi({name: {v: [tf.TensorSpec(spec.shape, spec.dtype, key)
                                           for key, spec in sorted(m.input_specs.items())]
                                       for v, m in versions.items()} for name, versions in self.served.items()})
        self.page = page(self.served)
        if self.grpc_address:
            from .grpc_api import start_grpc

            self.grpc_server = await start_grpc(self, self.grpc_address)
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
        model = self.lookup(match["name"], match["version"], match["label"])
        if action == ":predict":
            body = await _read_body(scope, receive, self.max_body_bytes, self.request_timeout)
            return 200, await self._predict(model, body)
        if action == "/metadata":
            return 200, model.metadata()
        versions = [model] if match["version"] or match["label"] else self.served[model.name].values()
        return 200, {"model_version_status": [
            {"version": str(m.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for m in sorted(versions, key=lambda m: -m.version)
        ]}

    def lookup(self, name, version=None, label=None):
        """The loaded model a request names (by version, version label or neither: the latest), as TF Serving finds
        it; only ever a key of ``served``, never a path on disk."""
        if name not in self.served:
            raise RequestError(f"Servable not found for request: Latest({_clip(name)})", 404)
        if label is not None:
            if label not in self.labels:
                raise RequestError(f"Unrecognized servable version label: {_clip(label)}")
            version = str(self.labels[label])
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
        lists = model.task.answer(outputs, model.steps(instances))
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


async def _read_body(scope, receive, limit, timeout):
    """The request's body, refused when over ``limit`` bytes or when it has not all arrived ``timeout`` seconds after
    its headers (a slow client would otherwise hold its connection and its memory as long as it likes)."""
    declared = dict(scope["headers"]).get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(f"request body of {int(declared)} bytes is over the limit of {limit} bytes", 413)
    body = bytearray()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - asyncio.get_running_loop().time(), 0))
        except asyncio.TimeoutError:
            raise RequestError(f"the request body did not arrive within {timeout:g} s ({len(body)} bytes came); "
                               "the connection is closed", 408, [(b"connection", b"close")]) from None
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
        return [item if model.several_inputs else _unwrap(item, name) for item in instances], False
    inputs = request["inputs"]
    if model.several_inputs:
        return _rows(inputs, sorted(model.input_specs)), True
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


def _rows(inputs, names):
    """Columnar inputs of several inputs (``{name: [value per instance]}``) as instances (``{name: value}`` each)."""
    if not isinstance(inputs, dict) or sorted(inputs) != names:
        got = ", ".join(map(repr, inputs)) if isinstance(inputs, dict) else type(inputs).__name__
        raise RequestError(f'"inputs" must be an object holding a list for each of the inputs {", ".join(names)}; '
                           f"got {got or 'none'}")
    if not all(isinstance(inputs[name], list) for name in names) or len({len(inputs[n]) for n in names}) > 1:
        raise RequestError(f'"inputs" must hold lists of the same length (one item per instance) for '
                           f'{", ".join(names)}')
    return [dict(zip(names, values)) for values in zip(*(inputs[name] for name in names))]
