"""``seqclf serve``: the served models' options (ports, batching, version labels, slow-client limits), checked before
the server starts."""

import click


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; loopback unless you say otherwise.")
@click.option("--port", type=click.IntRange(0, 65535), default=8501, show_default=True, help="TCP port (TF Serving's REST default).")
@click.option("--name", help="Serve the model under this name [default: the export's name].")
@click.option("--max-batch-size", type=click.IntRange(1), default=64, show_default=True,
              help="Most instances run through the model together.")
@click.option("--max-wait-ms", type=click.FloatRange(0), default=5.0, show_default=True,
              help="How long a request waits for others to share its batch.")
@click.option("--max-body-bytes", type=click.IntRange(1), default=10 * 1024 * 1024, show_default=True,
              help="Larger request bodies get 413 (and larger gRPC messages RESOURCE_EXHAUSTED).")
@click.option("--grpc-port", type=click.IntRange(1, 65535),
              help="Also answer TF Serving's gRPC API on this port (TF Serving's default: 8500).")
@click.option("--version-label", "labels", multiple=True, metavar="LABEL=VERSION",
              help="Name a version, as TF Serving's version labels (repeatable): /labels/LABEL in URLs, "
                   "version_label in gRPC.")
@click.option("--request-timeout", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True,
              help="Seconds a client has to send a request's headers, and again its body; then 408.")
@click.option("--max-connections", type=click.IntRange(1), default=512, show_default=True,
              help="Open connections beyond this get 503.")
def serve(path, host, port, name, max_batch_size, max_wait_ms, max_body_bytes, grpc_port, labels, request_timeout,
          max_connections):
    """Serve the models under PATH over TensorFlow Serving's REST API (and its gRPC API with --grpc-port).

    PATH is a run directory, an export directory with numbered versions, or a directory of
    several of these. Stop with Ctrl-C or SIGTERM; requests in flight finish first.

    \b
    Example:
      seqclf serve runs/mr --port 8501 --grpc-port 8500
      curl -d '{"instances": ["a gripping, funny film"]}' \\
        localhost:8501/v1/models/movie_reviews_sample:predict
    """
    from .errors import ConfigError
    from .serving import check_labels, find_models, serve as run_server

    models = find_models(path, name)
    versions = check_labels(models, _version_labels(labels, ConfigError))
    _check_port_free(host, port, ConfigError)
    if grpc_port is not None:
        from .serving import grpc_api  # noqa: F401 (installed, or one line saying how)

        if grpc_port == port:
            raise ConfigError(f"--grpc-port {grpc_port} is the REST --port too; pass another")
        _check_port_free(host, grpc_port, ConfigError, "--grpc-port")
    grpc_note = f" and gRPC on {host}:{grpc_port}" if grpc_port is not None else ""
    click.echo(f"Serving on http://{host}:{port}/v1/models/{grpc_note} (Ctrl-C to stop)", err=True)
    run_server(path, host, port, name, max_batch_size, max_wait_ms, max_body_bytes, grpc_port, versions,
               request_timeout, max_connections)


def _version_labels(pairs, error):
    """``--version-label stable=2`` options as ``{"stable": 2}``."""
    labels = {}
    for pair in pairs:
        label, _, version = pair.partition("=")
        if not label or not version.isascii() or not version.isdigit():
            raise error(f"--version-label takes LABEL=VERSION (for example stable=2); got {pair!r}")
        labels[label] = int(version)
    return labels


def _check_port_free(host, port, error, option="--port"):
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as problem:
        raise error(f"cannot listen on {host}:{port} ({problem.strerror}); pass another {option} or --host") from None
