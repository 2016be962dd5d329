"""An HTTP server speaking TensorFlow Serving's REST API for exported seqclf models.

Endpoints (as TensorFlow Serving defines them, plus health checks):

- ``GET  /v1/models/{name}[/versions/{v}]``           model status
- ``GET  /v1/models/{name}[/versions/{v}]/metadata``  signature: input and output names, dtypes, shapes
- ``POST /v1/models/{name}[/versions/{v}]:predict``   row (``instances``) or columnar (``inputs``) requests
- ``GET  /healthz``, ``/readyz``, ``/openapi.json``

Concurrent requests are grouped into batches (at most ``max_batch_size`` instances, waiting at
most ``max_wait_ms`` for more) and run through the SavedModel's signature function directly.
The server needs TensorFlow and the exports only: none of the training stack is imported.
"""

import json
import logging
import signal
import time

from .app import ModelServer
from .batcher import Batcher
from .model import RequestError, ServedModel, find_models
from .openapi import OPENAPI, openapi

__all__ = ["Batcher", "ModelServer", "OPENAPI", "RequestError", "ServedModel", "find_models", "openapi", "serve"]
log = logging.getLogger("seqclf.serving")


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
