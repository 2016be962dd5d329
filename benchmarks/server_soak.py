"""Soak of `seqclf serve`: a bounded run of mixed good, bad and hostile traffic; no 5xx, no wrong answer, flat memory.

Starts ``seqclf serve`` in a subprocess on a free loopback port, serving a text ``bigru`` trained
for one epoch on the shipped movie-review sample (as ``serve_load.py`` trains it), and keeps
``--clients`` connections busy for ``--seconds`` with a weighted mix of requests:

- ``valid``: 1-4 real review sentences, row or columnar format, with or without ``/versions/1``;
  every label (and probability) must equal what the exported SavedModel's signature, called
  directly in this process before the load starts, gives for that sentence;
- ``huge_batch``: one valid request of ``--huge-batch`` sentences, checked the same way;
- ``malformed_json``: truncated or non-UTF-8 bodies, deep nesting, over-long integers (400);
- ``wrong_input``: wrong types and shapes, lone surrogates, unknown keys or signatures (400);
- ``unknown_model``: unknown names and versions, names that try to leave the served folder (404);
- ``oversized``: bodies over the server's ``--max-body-bytes``, sized up front or chunked (413);
- ``slow``: a valid request whose body trickles in over about a second, over a raw socket;
- ``aborted``: connections dropped mid-header, mid-body or before the answer is read.

The server's resident memory (VmRSS in /proc/PID/status) is sampled every second. Goals: no
5xx, no wrong answer, no answer with another status than its kind's, and less than 10 % RSS
growth from the end of the ``--warmup`` seconds to the end of the run.

Then the same soak again under a slow-loris attack: ``--slow-loris`` more connections, each
sending a request's headers one line every ``--loris-interval`` seconds and never ending them
(connecting again when cut off). Goals: every attacking connection is cut off within the server's
``--request-timeout`` (plus 2 s), and the valid requests' throughput during the attack is at
least 80 % of the throughput without it, with the goals above still met.

Run from the project root (needs the ``benchmark`` extra: ``pip install -e ".[benchmark]"``)::

    python benchmarks/server_soak.py --seconds 60 --slow-loris 200

Prints a table, writes ``benchmarks/results/server_soak.json`` and exits 1 if a goal fails.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import ENV, ROOT, SAMPLE, free_port, stop, train_model, wait_ready  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "server_soak.json"
MIX = {"valid": 60, "huge_batch": 1, "malformed_json": 7, "wrong_input": 7, "unknown_model": 7, "oversized": 3,
       "slow": 5, "aborted": 5}
EXPECTED_STATUS = {"valid": 200, "huge_batch": 200, "slow": 200, "malformed_json": 400, "wrong_input": 400,
                   "unknown_model": 404, "oversized": 413}
GROWTH_GOAL = 10.0  # percent
SERVER_REQUEST_TIMEOUT = 30.0  # seqclf serve's default --request-timeout
SERVED_SHARE_GOAL = 0.8  # valid throughput under a slow-loris attack, as a share of the throughput without


def expected_answers(saved_model, texts, margin=1e-4):
    """``{text: (label, probabilities)}`` from the SavedModel's signature, called directly.

    Sentences whose two highest probabilities lie within ``margin`` are left out: float
    rounding in a differently shaped batch may swap their label, which would not be a bug.
    """
    import tensorflow as tf

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    answers = {}
    for start in range(0, len(texts), 256):
        chunk = texts[start:start + 256]
        outputs = signature(text=tf.constant(chunk))
        labels = [b.decode() for b in outputs["label"].numpy()]
        for text, label, probabilities in zip(chunk, labels, outputs["probabilities"].numpy()):
            top = np.sort(probabilities)
            if top[-1] - top[-2] > margin:
                answers[text] = (label, probabilities)
    return answers


class Traffic:
    """Builds the requests of each kind and judges their answers."""

    def __init__(self, name, answers, max_body_bytes, huge_batch, seed):
        self.name = name
        self.answers = answers
        self.texts = list(answers)
        self.max_body_bytes = max_body_bytes
        self.huge_batch = huge_batch
        self.random = random.Random(seed)

    def predict_path(self):
        return f"/v1/models/{self.name}" + self.random.choice(["", "/versions/1"]) + ":predict"

    def valid(self, count=None):
        """``(path, body, texts, columnar)`` of a correct predict request."""
        texts = self.random.choices(self.texts, k=count or self.random.randint(1, 4))
        form = self.random.choice(["rows", "objects", "columns", "named columns"])
        body = {"rows": lambda: {"instances": texts},
                "objects": lambda: {"instances": [{"text": t} for t in texts]},
                "columns": lambda: {"signature_name": "serving_default", "inputs": texts},
                "named columns": lambda: {"inputs": {"text": texts}}}[form]()
        return self.predict_path(), json.dumps(body).encode(), texts, form.endswith("columns")

    def malformed_json(self):
        good = json.dumps({"instances": self.random.choices(self.texts, k=2)}).encode()
        return self.random.choice([
            good[:self.random.randint(1, len(good) - 1)], b"{not json", b"\xff\xfe\x00", b"", good + b" trailing",
            b"[" * 50_000 + b"]" * 50_000, b'{"instances": [' + b"7" * 5000 + b"]}", b"\x00" * 64,
            b'{"instances": ["a", }', b'{"instances": [NaN, Infinity]]',
        ])

    def wrong_input(self):
        text = self.random.choice(self.texts)
        body = self.random.choice([
            {"instances": [1.5, 2.0]}, {"instances": text}, {"instances": []}, {"instances": [[text]]},
            {"instances": [None]}, {"instances": [{"body": text}]}, {"inputs": {"sentence": [text]}}, {"inputs": 5},
            {"instances": [text], "inputs": [text]}, {"signature_name": "classify", "instances": [text]},
            {"instances": [text, "\ud800 lone surrogate"]}, [1, 2], "just a string", {"instances": [True]},
            {"instances": [{"text": 3}]}, {},
        ])
        return json.dumps(body).encode()

    def unknown_model_path(self):
        return self.random.choice([
            "/v1/models/nope:predict", f"/v1/models/{self.name}/versions/7:predict",
            f"/v1/models/{self.name}/versions/-1:predict", f"/v1/models/{self.name}/versions/%D9%A1:predict",
            "/v1/models/..%2F..%2Fetc%2Fpasswd:predict", "/v1/models/%2e%2e/versions/1:predict",
            f"/v1/models/{self.name}/versions/99999999999999999999:predict", "/v1/models/a%00b:predict",
        ])

    def oversized(self):
        filler = "x" * (self.max_body_bytes + self.random.randint(1, 100_000))
        return json.dumps({"instances": [filler]}).encode()

    def check(self, texts, columnar, status, body):
        """``None`` if ``body`` is the right answer for ``texts``, else what is wrong."""
        if status != 200:
            return f"status {status}: {body[:200]!r}"
        try:
            answer = json.loads(body)
            if columnar:
                labels, probabilities = answer["outputs"]["label"], answer["outputs"]["probabilities"]
            else:
                labels = [p["label"] for p in answer["predictions"]]
                probabilities = [p["probabilities"] for p in answer["predictions"]]
        except (ValueError, KeyError, TypeError) as error:
            return f"unreadable answer ({error}): {body[:200]!r}"
        if len(labels) != len(texts) or len(probabilities) != len(texts):
            return f"{len(labels)} answers for {len(texts)} instances"
        for i, text in enumerate(texts):
            label, expected = self.answers[text]
            if labels[i] != label or not np.allclose(probabilities[i], expected, atol=1e-3):
                return f"instance {i}: {labels[i]} {probabilities[i]} instead of {label} {expected.tolist()}"
        return None


class Tally:
    def __init__(self):
        self.sent = Counter()
        self.statuses = defaultdict(Counter)  # kind -> status (or what happened instead) -> count
        self.wrong = []  # (kind, problem)
        self.unexpected = []  # (kind, status) for 4xx kinds answered otherwise

    def record(self, kind, status, problem=None):
        self.sent[kind] += 1
        self.statuses[kind][status] += 1
        if problem:
            self.wrong.append((kind, problem))
        elif kind in EXPECTED_STATUS and status != EXPECTED_STATUS[kind]:
            self.unexpected.append((kind, status))


async def raw_exchange(port, chunks, pause=0.0, read=True):
    """Send ``chunks`` over a fresh connection (``pause`` seconds apart); return ``(status, body)`` or ``None``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, chunk in enumerate(chunks):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(chunk)
            await writer.drain()
        if not read:
            return None
        answer = await asyncio.wait_for(reader.read(), 60)  # the request said Connection: close
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def request_bytes(path, body, length=None):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode(), body


async def one_request(kind, session, url, port, traffic, tally):
    import aiohttp

    async def post(path, data):
        async with session.post(url + path, data=data) as answer:
            return answer.status, await answer.read()

    try:
        if kind in ("valid", "huge_batch"):
            path, body, texts, columnar = traffic.valid(traffic.huge_batch if kind == "huge_batch" else None)
            status, answer = await post(path, body)
            tally.record(kind, status, traffic.check(texts, columnar, status, answer))
        elif kind == "malformed_json":
            status, _ = await post(traffic.predict_path(), traffic.malformed_json())
            tally.record(kind, status)
        elif kind == "wrong_input":
            status, _ = await post(traffic.predict_path(), traffic.wrong_input())
            tally.record(kind, status)
        elif kind == "unknown_model":
            status, _ = await post(traffic.unknown_model_path(), json.dumps({"instances": traffic.texts[:1]}).encode())
            tally.record(kind, status)
        elif kind == "oversized":
            body = traffic.oversized()
            if traffic.random.random() < 0.5:
                status, _ = await post(traffic.predict_path(), body)
            else:  # no Content-Length: chunked, so the server finds out while reading
                async def chunked():
                    for start in range(0, len(body), 64 * 1024):
                        yield body[start:start + 64 * 1024]
                status, _ = await post(traffic.predict_path(), chunked())
            tally.record(kind, status)
        elif kind == "slow":
            path, body, texts, columnar = traffic.valid()
            head, body = request_bytes(path, body)
            pieces = [head] + [body[i * len(body) // 4:(i + 1) * len(body) // 4] for i in range(4)]
            status, answer = await raw_exchange(port, pieces, pause=0.25)
            tally.record(kind, status, traffic.check(texts, columnar, status, answer))
        elif kind == "aborted":
            path, body, _, _ = traffic.valid()
            head, body = request_bytes(path, body)
            how = traffic.random.choice(["mid-header", "mid-body", "before the answer", "at once"])
            chunks = {"mid-header": [head[:len(head) // 2]], "mid-body": [head, body[:len(body) // 2]],
                      "before the answer": [head, body], "at once": []}[how]
            await raw_exchange(port, chunks, read=False)
            tally.record(kind, "dropped " + how)
        else:
            raise ValueError(f"unknown kind {kind!r}")
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
        # A connection the server closed on us: fine only where the server may stop reading (oversized)
        what = f"connection error: {type(error).__name__}"
        tally.record(kind, what, None if kind == "oversized" else what)


async def loris(port, stop_at, interval, held):
    """A slow-loris client until ``stop_at``: a connection whose request headers come a line every ``interval``
    seconds and never end; when the server cuts it off, ``(seconds held, status or what happened)`` goes to ``held``
    and it connects again. A connection still open at the end goes there as ``(seconds held, "open at the end")``."""
    while time.monotonic() < stop_at:
        opened = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(interval)
            continue
        try:
            writer.write(b"POST /v1/models/reviews:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            line = 0
            while True:
                if time.monotonic() >= stop_at:
                    held.append((time.monotonic() - opened, "open at the end"))
                    break
                try:
                    answer = await asyncio.wait_for(reader.read(65536), min(interval, stop_at - time.monotonic()))
                except asyncio.TimeoutError:
                    writer.write(f"X-Slow-{line}: 1\r\n".encode())
                    line += 1
                    continue
                held.append((time.monotonic() - opened, int(answer.split(b" ", 2)[1]) if answer else "closed"))
                break
        except OSError as error:
            held.append((time.monotonic() - opened, type(error).__name__))
        finally:
            writer.close()


async def drive(port, pid, traffic, seconds, clients, mix, slow_loris=0, loris_interval=2.0):
    """The load (``clients`` workers drawing kinds from ``mix``, and ``slow_loris`` attackers) and an RSS sample
    per second; returns the tally, the samples, the duration and the attackers' ``(seconds held, outcome)``."""
    import aiohttp

    tally, samples, held = Tally(), [], []
    kinds, weights = list(mix), list(mix.values())
    url = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    stop_at = start + seconds

    async def sampler():
        while True:
            samples.append((round(time.monotonic() - start, 2), rss_kib(pid)))
            if time.monotonic() >= stop_at:
                return
            await asyncio.sleep(min(1.0, max(0.0, stop_at - time.monotonic())))

    async def worker():
        while time.monotonic() < stop_at:
            kind = traffic.random.choices(kinds, weights)[0]
            await one_request(kind, session, url, port, traffic, tally)

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), timeout=timeout,
                                     headers={"Content-Type": "application/json"}) as session:
        await asyncio.gather(sampler(), *(worker() for _ in range(clients)),
                             *(loris(port, stop_at, loris_interval, held) for _ in range(slow_loris)))
    duration = time.monotonic() - start
    return tally, samples, duration, held


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def soak(run_dir, seconds=60.0, warmup=5.0, clients=32, mix=None, max_body_bytes=1024 * 1024, huge_batch=2000,
         texts=None, seed=0, slow_loris=0, loris_interval=2.0, request_timeout=None):
    """Serve ``run_dir`` with ``seqclf serve`` and soak it, under ``slow_loris`` attacking connections if given
    (the server's ``--request-timeout`` is ``request_timeout``, or its default); return the figures as a dict
    (see ``goals``)."""
    from seqclf.serving import find_models

    mix = mix or MIX
    (name, versions), = find_models(run_dir).items()
    texts = texts if texts is not None else pd.read_csv(SAMPLE)["text"].head(2000).tolist()
    answers = expected_answers(versions[1], sorted(set(texts)))
    traffic = Traffic(name, answers, max_body_bytes, huge_batch, seed)
    port = free_port()
    timeout = ["--request-timeout", str(request_timeout)] if request_timeout else []
    process = subprocess.Popen([sys.executable, "-m", "seqclf.cli", "-q", "serve", str(run_dir), "--port", str(port),
                                "--max-body-bytes", str(max_body_bytes), *timeout], env=ENV)
    try:
        wait_ready(port, process)
        tally, samples, duration, held = asyncio.run(drive(port, process.pid, traffic, seconds, clients, mix,
                                                           slow_loris, loris_interval))
        alive = process.poll() is None
    finally:
        stop(process)
    steady = [rss for t, rss in samples if t >= warmup] or [samples[-1][1]]
    cut = [(t, outcome) for t, outcome in held if outcome != "open at the end"]
    statuses = Counter()
    for counts in tally.statuses.values():
        statuses.update(counts)
    result = {
        "settings": {"seconds": seconds, "warmup": warmup, "clients": clients, "mix": mix,
                     "max_body_bytes": max_body_bytes, "huge_batch": huge_batch, "seed": seed,
                     "slow_loris": slow_loris, "loris_interval": loris_interval,
                     "request_timeout": request_timeout or SERVER_REQUEST_TIMEOUT,
                     "texts_checked": len(answers), "texts_left_out_as_near_ties": len(set(texts)) - len(answers)},
        "duration_s": round(duration, 1),
        "requests": sum(tally.sent.values()),
        "requests_per_kind": dict(sorted(tally.sent.items())),
        "valid_per_s": round(tally.statuses["valid"][200] / duration, 1),
        "loris_connections": len(held),
        "loris_cut_off": len(cut),
        "loris_outcomes": {str(k): v for k, v in sorted(Counter(o for _, o in held).items(), key=str)},
        "loris_held_s_median": round(float(np.median([t for t, _ in cut])), 2) if cut else None,
        "loris_held_s_max": round(max(t for t, _ in cut), 2) if cut else None,
        "loris_open_longest_s": round(max((t for t, o in held if o == "open at the end"), default=0.0), 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "statuses_per_kind": {kind: {str(k): v for k, v in counts.items()}
                              for kind, counts in sorted(tally.statuses.items())},
        "server_errors_5xx": sum(v for k, v in statuses.items() if isinstance(k, int) and k >= 500),
        "wrong_answers": len(tally.wrong),
        "wrong_examples": [f"{kind}: {problem}" for kind, problem in tally.wrong[:10]],
        "unexpected_statuses": len(tally.unexpected),
        "unexpected_examples": [f"{kind}: {status}" for kind, status in tally.unexpected[:10]],
        "server_alive_at_end": alive,
        "server_exit_code": process.returncode,
        "rss_kib_start": steady[0],
        "rss_kib_end": steady[-1],
        "rss_kib_peak": max(rss for _, rss in samples),
        "rss_growth_percent": round(100 * (steady[-1] - steady[0]) / steady[0], 2),
        "rss_samples": samples,
    }
    result["goals"] = goals(result)
    return result


def goals(result):
    """Each goal's name and whether it was met."""
    attack = {}
    if result["settings"]["slow_loris"]:
        limit = result["settings"]["request_timeout"] + 2
        attack = {f"every slow-loris connection cut off within {limit:g} s (none open longer at the end)":
                  result["loris_cut_off"] > 0 and result["loris_held_s_max"] <= limit
                  and result["loris_open_longest_s"] <= limit}
    return {**attack,
        "no 5xx": result["server_errors_5xx"] == 0,
        "no wrong answer": result["wrong_answers"] == 0,
        "every status as expected for its kind": result["unexpected_statuses"] == 0,
        "server alive, then stopped cleanly": result["server_alive_at_end"] and result["server_exit_code"] == 0,
        f"RSS growth < {GROWTH_GOAL:g} %": result["rss_growth_percent"] < GROWTH_GOAL,
    }


def report(result):
    rows = [{"kind": kind, "sent": sent, **result["statuses_per_kind"][kind]}
            for kind, sent in result["requests_per_kind"].items()]
    table = pd.DataFrame(rows).fillna(0)
    outcomes = sorted(table.columns[2:], key=lambda c: (not c.isdigit(), c))  # status codes first
    table = table[["kind", "sent", *outcomes]]
    table[table.columns[1:]] = table[table.columns[1:]].astype(int)
    print(table.to_string(index=False))
    rate = result["requests"] / result["duration_s"]
    print(f"\n{result['requests']} requests in {result['duration_s']} s ({rate:.0f}/s); statuses {result['statuses']}")
    print(f"5xx: {result['server_errors_5xx']}; wrong answers: {result['wrong_answers']}; "
          f"unexpected statuses: {result['unexpected_statuses']}")
    for line in result["wrong_examples"] + result["unexpected_examples"]:
        print("  ", line)
    start, end, peak = (result[f"rss_kib_{which}"] / 1024 for which in ("start", "end", "peak"))
    print(f"server RSS: {start:.1f} MiB after the warm-up, {end:.1f} MiB at the end "
          f"({result['rss_growth_percent']:+.2f} %), peak {peak:.1f} MiB")
    if result["settings"]["slow_loris"]:
        print(f"slow loris: {result['settings']['slow_loris']} attackers opened {result['loris_connections']} "
              f"connections, {result['loris_cut_off']} cut off ({result['loris_outcomes']}) after "
              f"{result['loris_held_s_median']} s (median), at most {result['loris_held_s_max']} s; the longest "
              f"still open at the end had been open {result['loris_open_longest_s']} s")
    for goal, met in result["goals"].items():
        print(f"  [{'ok' if met else 'FAILED'}] {goal}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs, warm-up included")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the RSS baseline is taken")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--max-body-bytes", type=int, default=1024 * 1024, help="the server's --max-body-bytes")
    parser.add_argument("--huge-batch", type=int, default=2000, help="sentences in a huge_batch request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, help="serve this run directory instead of training one")
    parser.add_argument("--slow-loris", type=int, default=200, help="attacking connections in the second soak "
                        "(0: no second soak)")
    parser.add_argument("--loris-interval", type=float, default=2.0, help="seconds between an attacker's header lines")
    parser.add_argument("--request-timeout", type=float, help="the server's --request-timeout [its default]")
    args = parser.parse_args()
    phases = {"without": 0, "with_slow_loris": args.slow_loris} if args.slow_loris else {"without": 0}
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        run = args.run or train_model(Path(scratch))
        for phase, attackers in phases.items():
            print(f"\n== soak {phase.replace('_', ' ')} ({attackers} attacking connections)", flush=True)
            results[phase] = soak(run, args.seconds, args.warmup, args.clients, MIX, args.max_body_bytes,
                                  args.huge_batch, seed=args.seed, slow_loris=attackers,
                                  loris_interval=args.loris_interval, request_timeout=args.request_timeout)
            report(results[phase])
    result = {**results.pop("without"), "cpu_count": os.cpu_count()}
    met = all(result["goals"].values())
    if results:
        attacked = results["with_slow_loris"]
        share = attacked["valid_per_s"] / result["valid_per_s"]
        attacked["goals"][f"valid throughput >= {SERVED_SHARE_GOAL:.0%} of the soak without the attack"] = \
            share >= SERVED_SHARE_GOAL
        attacked["valid_share_of_unattacked"] = round(share, 3)
        result["with_slow_loris"] = attacked
        met = met and all(attacked["goals"].values())
        print(f"\nvalid requests answered 200: {result['valid_per_s']}/s without the attack, "
              f"{attacked['valid_per_s']}/s under it ({share:.0%}; goal >= {SERVED_SHARE_GOAL:.0%})")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
