"""Slow clients are cut off (`--request-timeout`) and newcomers refused past `--max-connections`, while valid clients
keep being served."""

import json
import socket
import time

import pytest
import requests

from .test_serving import TEXTS, Server

PREDICT = "/v1/models/reviews:predict"


@pytest.fixture(scope="module")
def server(tiny_run):
    server = Server(tiny_run, "--request-timeout", "1", "--max-connections", "6")
    yield server
    assert server.stop() == 0


def connect(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def answer_of(sock):
    """Everything the server sends until it closes the connection: ``(status, JSON body)``."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def valid(server):
    answer = server.post(PREDICT, {"instances": TEXTS[:1]})
    if answer.status_code == 503:
        assert "--max-connections" in answer.json()["error"] and answer.headers["retry-after"] == "1"
    return answer.status_code


def test_a_client_that_sends_nothing_or_half_its_headers_gets_408_and_is_disconnected(server):
    silent, halting = connect(server), connect(server)
    halting.sendall(b"POST /v1/models/reviews:predict HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    started = time.monotonic()
    for sock in (silent, halting):
        status, body = answer_of(sock)
        assert status == 408 and "request headers did not arrive within 1 s" in body["error"]
        sock.close()
    assert time.monotonic() - started < 8
    assert valid(server) == 200


def test_a_body_that_trickles_in_gets_408_and_the_connection_closes(server):
    sock = connect(server)
    sock.sendall(b"POST /v1/models/reviews:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 200\r\n\r\n" + b'{"instances": [')
    status, body = answer_of(sock)
    sock.close()
    assert status == 408 and "request body did not arrive within 1 s (15 bytes came)" in body["error"]


def test_a_body_trickling_to_a_route_that_does_not_read_it_is_cut_off_too(server):
    sock = connect(server)
    sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    started = time.monotonic()
    sock.settimeout(0.3)
    closed = False
    while time.monotonic() - started < 8 and not closed:
        try:
            sock.sendall(b"x")
            closed = sock.recv(65536) == b"" if select_readable(sock) else False
        except (ConnectionError, TimeoutError, OSError):
            closed = True
        time.sleep(0.2)
    sock.close()
    assert closed and time.monotonic() - started < 4  # 405 at once, cut off at the timeout (1 s) plus 1 s


def select_readable(sock):
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_a_slow_but_timely_client_is_served(server):
    body = json.dumps({"instances": TEXTS[:1]}).encode()
    sock = connect(server)
    sock.sendall(b"POST /v1/models/reviews:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
    time.sleep(0.4)
    sock.sendall(b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
    time.sleep(0.4)
    sock.sendall(body[10:])
    status, answer = answer_of(sock)
    sock.close()
    assert status == 200 and answer["predictions"][0]["label"] in ("neg", "pos")


def test_beyond_max_connections_requests_get_503_until_the_idle_ones_are_cut_off(server):
    idle = [connect(server) for _ in range(6)]
    time.sleep(0.2)
    try:
        assert valid(server) == 503
        time.sleep(1.5)  # the request timeout closes the idle connections
        assert valid(server) == 200
    finally:
        for sock in idle:
            sock.close()


def test_connections_open_before_the_server_filled_up_keep_being_served(server):
    with requests.Session() as session:
        assert session.post(server.url + PREDICT, json={"instances": TEXTS[:1]}).status_code == 200  # now connected
        idle = [connect(server) for _ in range(6)]
        time.sleep(0.2)
        try:
            assert valid(server) == 503  # a newcomer
            answer = session.post(server.url + PREDICT, json={"instances": TEXTS[:1]})  # the same kept-alive connection
            assert answer.status_code == 200
        finally:
            for sock in idle:
                sock.close()
