"""An HTTP server speaking TensorFlow Serving's REST API for exported seqclf models.

Endpoints (as TensorFlow Serving defines them, plus health checks):

- ``GET  /v1/models/{name}[/versions/{v}]``           model status
- ``GET  /v1/models/{name}[/versions/{v}]/metadata``  signature: input and output names, dtypes, shapes
- ``POST /v1/models/{name}[/versions/{v}]:predict``   row (``instances``) or columnar (``inputs``) requests
- ``GET  /healthz``, ``/readyz``, ``/openapi.json``

``/labels/{label}`` may stand for ``/versions/{v}`` (``--version-label``). With a gRPC port, TF Serving's
gRPC API answers as well, over the same models and batches (:mod:`seqclf.serving.grpc_api`).

Slow clients are cut off: a request's headers must arrive within ``request_timeout`` seconds of
its connection (or of its first byte on a kept-alive one), and its body within as long again,
or the client gets 408 and the connection closes; a connection opened while ``max_connections``
others are open gets 503 for its request (those already open are served as before).

Concurrent requests are grouped into batches (at most ``max_batch_size`` instances, waiting at
most ``max_wait_ms`` for more) and run through the SavedModel's signature function directly.
The server needs TensorFlow and the exports only: none of the training stack is imported.
"""

import json
import logging
import signal
import time

from ..errors import ConfigError
from .app import ModelServer
from .batcher import Batcher
from .model import RequestError, ServedModel, find_models
from .openapi import OPENAPI, openapi

__all__ = ["Batcher", "ModelServer", "OPENAPI", "RequestError", "ServedModel", "check_labels", "find_models", "openapi",
           "serve"]
log = logging.getLogger("seqclf.serving")


def serve(path, host="127.0.0.1", port=8501, name=None, max_batch_size=64, max_wait_ms=5.0,
          max_body_bytes=10 * 1024 * 1024, grpc_port=None, labels=None, request_timeout=30.0, max_connections=512):
    """Serve the models under ``path`` until SIGTERM or Ctrl-C (requests in flight finish first).

    ``grpc_port`` also answers TF Serving's gRPC API there; ``labels`` (``{label: version}``) name versions.
    """
    import uvicorn

    models = find_models(path, name)
    grpc_address = None if grpc_port is None else f"[{host}]:{grpc_port}" if ":" in host else f"{host}:{grpc_port}"
    app = ModelServer(models, max_batch_size, max_wait_ms, max_body_bytes, check_labels(models, labels),
                      request_timeout, grpc_address)
    started = time.perf_counter()
    log.info("models: %s", ", ".join(f"{n} (versions {', '.join(map(str, sorted(v)))})" for n, v in models.items()))
    # uvicorn shuts down gracefully, then re-raises the signal it caught; end with exit code 0 then.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_quietly)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30,
                    http=_http_protocol(request_timeout, max_connections))
    finally:
        log.info("server stopped after %.0f s", time.perf_counter() - started)


def check_labels(models, labels):
    """``labels`` (``{label: version}``), checked: each names a version that some served model has."""
    labels = dict(labels or {})
    for label, version in labels.items():
        if not any(version in versions for versions in models.values()):
            held = ", ".join(f"{n}: {', '.join(map(str, sorted(v)))}" for n, v in sorted(models.items()))
            raise ConfigError(f"version label {label!r} names version {version}, which no served model has "
                                    f"({held})")
    return labels


def _http_protocol(request_timeout, max_connections):
    """uvicorn's HTTP protocol, made to refuse what its parser cannot read (a NUL or raw non-ASCII byte in
    the URL, a malformed request line) with a JSON error like every other answer, not a plain-text one; to
    close a connection whose request headers have not arrived within ``request_timeout`` seconds; and to
    answer 503 on a connection opened while ``max_connections`` others were open. Unlike uvicorn's own
    ``limit_concurrency``, which answers 503 on every connection while the server is full, the connections
    that were open before keep being served: clients already connected are not cut off by newcomers."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn's h11 protocol, whose 400 stays plain text
        log.warning("httptools is not installed: slow request headers are not cut off and --max-connections is "
                    "not applied")
        return "auto"

    class JsonErrorProtocol(HttpToolsProtocol):
        header_deadline = None
        body_deadline = None
        over_limit = False

        def connection_made(self, transport):
            super().connection_made(transport)
            self.over_limit = len(self.connections) > max_connections
            self._arm()

        def on_message_begin(self):  # the next request on a kept-alive connection: timed from its first byte
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self):
            self._disarm()
            # Whatever the route, its body must come in time too: the app gives a predict's body a 408 when the
            # timeout passes; a second later, or on a route that answered without reading its body, it is cut off.
            if _has_body(self.headers):
                self.body_deadline = self.loop.call_later(request_timeout + 1, self._body_too_slow)
            if not self.over_limit:
                return super().on_headers_complete()
            app, self.app = self.app, _too_many_connections  # this request only: uvicorn reads self.app here
            try:
                super().on_headers_complete()
            finally:
                self.app = app

        def on_message_complete(self):
            self._disarm_body()
            super().on_message_complete()

        def connection_lost(self, exc):
            self._disarm()
            self._disarm_body()
            super().connection_lost(exc)

        def _arm(self):
            if self.header_deadline is None:
                self.header_deadline = self.loop.call_later(request_timeout, self._headers_too_slow)

        def _disarm(self):
            if self.header_deadline is not None:
                self.header_deadline.cancel()
                self.header_deadline = None

        def _disarm_body(self):
            if self.body_deadline is not None:
                self.body_deadline.cancel()
                self.body_deadline = None

        def _body_too_slow(self):
            self.body_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def _headers_too_slow(self):
            self.header_deadline = None
            if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
                self._arm()  # an earlier request is still being answered: this one may wait for it
                return
            if not self.transport.is_closing():
                self._send_error(408, "Request Timeout", f"the request headers did not arrive within "
                                 f"{request_timeout:g} s; the connection is closed")

        def send_400_response(self, msg):
            self._send_error(400, "Bad Request", msg)

        def _send_error(self, status, reason, msg):
            body = json.dumps({"error": msg}).encode()
            head = [f"HTTP/1.1 {status} {reason}".encode(),
                    *(name + b": " + value for name, value in self.server_state.default_headers),
                    b"content-type: application/json", b"content-length: " + str(len(body)).encode(),
                    b"connection: close"]
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            self.transport.close()

    return JsonErrorProtocol


def _has_body(headers):
    """Whether request ``headers`` (``[(lowercase name, value)]``) announce a body."""
    fields = dict(headers)
    return fields.get(b"content-length", b"0").strip() not in (b"", b"0") or b"transfer-encoding" in fields


async def _too_many_connections(scope, receive, send):
    body = json.dumps({"error": "the server holds as many open connections as --max-connections allows; "
                                "try again later"}).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": body})


def _exit_quietly(signum, frame):
    raise SystemExit(0)
