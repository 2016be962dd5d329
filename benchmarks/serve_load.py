"""Throughput and latency of `seqclf serve` (REST and gRPC) against a naive one-request-one-predict server.

Both servers serve the same default text ``bigru`` (trained for one epoch on the shipped movie
review sample: accuracy does not matter here, the architecture does), on loopback, started by
this script in subprocesses. A load generator in a third process keeps N connections busy
with single-instance row-format requests of real review sentences for a bounded time and
records every latency. The seqclf server also answers gRPC (``--grpc-port``): the same load as
N concurrent streams on one channel with TF Serving's official client stubs (``grpc.aio``), its
rounds interleaved with the REST rounds on the same server process.

Run from the project root (needs the ``benchmark`` extra: ``pip install -e ".[benchmark]"``)::

    python benchmarks/serve_load.py --clients 32 --seconds 10 --rounds 3

Prints a table and writes ``benchmarks/results/serve_load.json``.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "movie_reviews_sample.csv"
RESULTS = ROOT / "benchmarks" / "results" / "serve_load.json"
NAME = "reviews"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

NAIVE_SERVER = '''
import sys, numpy as np, keras
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.concurrency import run_in_threadpool
from seqclf.rundir import load_model  # registers seqclf's layers and optimizer, loads in safe mode
model = load_model(sys.argv[1])
labels = open(sys.argv[2]).read().split()
async def predict(request):
    body = await request.json()
    p = await run_in_threadpool(model.predict, np.array(body["instances"], dtype=object), verbose=0)
    return JSONResponse({"predictions": [{"label": labels[int(r.argmax())], "probabilities": r.tolist()} for r in p]})
async def ready(request):
    return JSONResponse({"status": "ready"})
app = Starlette(routes=[Route("/v1/models/reviews:predict", predict, methods=["POST"]), Route("/readyz", ready)])
import uvicorn
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
'''


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port, process, timeout=120):
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server on port {port} did not become ready")


def train_model(scratch):
    """A default bigru run directory (one epoch) to serve."""
    run = scratch / "run"
    subprocess.run([sys.executable, "-m", "seqclf.cli", "-q", "fit", str(SAMPLE), "--epochs", "1", "--out", str(run),
                    "--name", NAME, "--verbose", "0"], check=True, env=ENV)
    return run


async def keep_busy(send, count, clients, seconds, warmup):
    """Keep ``clients`` callers of ``send(i)`` (the i-th request of ``count``; True when answered) busy for
    ``warmup`` + ``seconds``; return the latencies (s) and the error count of the measured seconds."""
    latencies, errors = [], 0
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client(offset):
        nonlocal errors
        i = offset
        while (now := time.perf_counter()) < stop_at:
            answered = await send(i % count)
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)
                errors += not answered
            i += clients

    await asyncio.gather(*(client(c) for c in range(clients)))
    return latencies, errors


async def load(port, texts, clients, seconds, warmup):
    """Keep ``clients`` connections busy for ``seconds``; return latencies (s) and error count."""
    import aiohttp

    url = f"http://127.0.0.1:{port}/v1/models/{NAME}:predict"
    bodies = [json.dumps({"instances": [t]}).encode() for t in texts]
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers={"Content-Type": "application/json"}) as session:
        async def send(i):
            async with session.post(url, data=bodies[i]) as answer:
                await answer.read()
                return answer.status == 200

        return await keep_busy(send, len(bodies), clients, seconds, warmup)


async def load_grpc(port, texts, clients, seconds, warmup):
    """As :func:`load`, over gRPC: ``clients`` concurrent Predict calls on one channel."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    requests = []
    for text in texts:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = NAME
        request.inputs["text"].CopyFrom(tf.make_tensor_proto([text]))
        requests.append(request)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        async def send(i):
            try:
                await stub.Predict(requests[i], timeout=30)
            except grpc.aio.AioRpcError:
                return False
            return True

        return await keep_busy(send, len(requests), clients, seconds, warmup)


def run_load(port, texts, clients, seconds, warmup, protocol="rest"):
    """The load generator in its own process, so that it does not share the server's interpreter."""
    function = "load_grpc" if protocol == "grpc" else "load"
    script = (f"import asyncio, json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import serve_load; "
              f"l, e = asyncio.run(serve_load.{function}({port}, json.load(sys.stdin), {clients}, {seconds}, "
              f"{warmup})); "
              f"print(json.dumps({{'latencies': l, 'errors': e}}))")
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True, text=True,
                          check=True, env=ENV)
    result = json.loads(done.stdout)
    latencies = np.array(result["latencies"])
    return {
        "requests": len(latencies), "errors": result["errors"], "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 2),
    }


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server; the table shows the median round")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args()
    texts = pd.read_csv(SAMPLE)["text"].head(1000).tolist()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        run = train_model(Path(scratch))
        servers = {
            "seqclf serve (batched SavedModel signature)": [
                sys.executable, "-m", "seqclf.cli", "-q", "serve", str(run), "--max-batch-size", str(args.max_batch_size),
                "--max-wait-ms", str(args.max_wait_ms)],
            "naive (model.predict per request)": [
                sys.executable, "-c", NAIVE_SERVER, str(run / "model.keras"), str(run / "labels.txt")],
        }
        for label, command in servers.items():
            ports = {"rest": free_port()}
            if "serve" in command:
                ports["grpc"] = free_port()
                command = command + ["--port", str(ports["rest"]), "--grpc-port", str(ports["grpc"])]
            else:
                command = command + [str(ports["rest"])]
            process = subprocess.Popen(command, env=ENV)
            rounds = {protocol: [] for protocol in ports}
            try:
                wait_ready(ports["rest"], process)
                for _ in range(args.rounds):  # REST and gRPC rounds interleaved on the same server
                    for protocol, port in ports.items():
                        rounds[protocol].append(run_load(port, texts, args.clients, args.seconds, args.warmup,
                                                         protocol))
            finally:
                stop(process)
            for protocol, measured in rounds.items():
                median = sorted(measured, key=lambda r: r["requests_per_s"])[len(measured) // 2]
                rows.append({"server": label, "protocol": protocol, "clients": args.clients, **median,
                             "requests_per_s_each_round": [r["requests_per_s"] for r in measured]})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    rate = table.set_index("protocol").groupby(level=0)["requests_per_s"].first()  # seqclf's rows come first
    naive = table["requests_per_s"].iloc[-1]
    ratio = rate["rest"] / naive
    print()
    print(table.to_string(index=False))
    print(f"\nseqclf serve (REST) / naive throughput: {ratio:.1f}x (goal >= 20x); gRPC / REST on the same server: "
          f"{rate['grpc'] / rate['rest']:.2f}x; goals for seqclf serve: >= 1000 requests/s and p99 < 100 ms with "
          f"32 clients")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"settings": vars(args), "rows": rows, "throughput_ratio": round(ratio, 1),
                                   "grpc_over_rest": round(float(rate["grpc"] / rate["rest"]), 2),
                                   "cpu_count": os.cpu_count()}, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
