"""The transport rules over raw sockets, against a live uvicorn server on 127.0.0.1 built exactly as
`python -m quickdraw_tf.serve` builds it (serve/transport.py), with the stand-in predictor and generator
and short limits: header and body timeouts, the connection cap, JSON-only POST bodies, the Origin and
Host checks, and a completion stopped when its client hangs up. (The CLI's flags reach the same code:
test_documented_requests.py runs the real server process.)"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time

import pytest
import uvicorn

from quickdraw_tf.serve import transport
from quickdraw_tf.serve.app import create_app
from tests.serve.conftest import free_port
from tests.serve.fake_generator import FakeGenerator
from tests.serve.fake_predictor import FakePredictor

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 4
ALLOWED = "http://allowed.example:3000"
BODY = b'{"drawing": [[[10, 20.5, 30], [5, 6, 7.25]]]}'


@contextlib.contextmanager
def live_server(generator: FakeGenerator):
    port = free_port()
    app = create_app(FakePredictor(), generator=generator, host="127.0.0.1", port=port,
                     allow_origins=(ALLOWED,), body_timeout_s=BODY_TIMEOUT_S,
                     complete_timeout_s=600)  # only a hang-up stops a completion
    config = transport.server_config(app, "127.0.0.1", port, header_timeout_s=HEADER_TIMEOUT_S,
                                     max_connections=MAX_CONNECTIONS, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture(scope="module")
def port(generator):
    with live_server(generator) as port:
        yield port


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)  # a hung server fails the test
    return sock


def request(method: str, path: str, port: int, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {headers.pop('host', f'127.0.0.1:{port}')}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one response with Content-Length; (0, {}, b"") if closed unanswered."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return (0, {}, b"") if not data else _fail(data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def _fail(data: bytes):
    raise AssertionError(f"incomplete response: {data[:200]!r}")


def exchange(port: int, raw: bytes) -> tuple[int, dict, bytes]:
    with connect(port) as sock:
        sock.sendall(raw)
        return read_response(sock)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_half_sent_headers_get_408_and_the_connection_is_closed(port):
    with connect(port) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-ty")  # ... and nothing more
        status, headers, body = read_response(sock)
        assert status == 408 and headers["connection"] == "close"
        message = f"the request headers did not arrive within {HEADER_TIMEOUT_S:g} s"
        assert json.loads(body) == {"error": message}
        assert closed_by_server(sock)


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(port):
    with connect(port) as sock:
        assert read_response(sock) == (0, {}, b"")


def test_a_slow_second_request_on_a_kept_alive_connection_gets_408(port):
    with connect(port) as sock:
        sock.sendall(request("GET", "/healthz", port))
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert read_response(sock)[0] == 408


def test_a_body_that_stops_coming_gets_408(port):
    with connect(port) as sock:
        sock.sendall(request("POST", "/v1/predict", port, content_type="application/json")
                     .replace(b"content-length: 0", b"content-length: 200") + BODY[:10])
        status, headers, body = read_response(sock)
        assert status == 408 and headers["connection"] == "close"
        assert json.loads(body) == {"error": f"the body did not arrive within {BODY_TIMEOUT_S:g} s (10 bytes "
                                             "received)"}
        assert closed_by_server(sock)


def test_connections_beyond_the_cap_get_503_and_served_ones_go_on(port):
    held = [connect(port) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:  # each answered and kept alive
            sock.sendall(request("GET", "/healthz", port))
            assert read_response(sock)[0] == 200
        status, _, body = exchange(port, request("GET", "/healthz", port))
        assert status == 503
        assert json.loads(body) == {"error": f"the server has {MAX_CONNECTIONS} connections open; try again "
                                             "shortly"}
        held[0].sendall(request("GET", "/healthz", port))  # the connections it holds still work
        assert read_response(held[0])[0] == 200
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 30
    while exchange(port, request("GET", "/healthz", port))[0] != 200:  # freed once the server saw them close
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("headers, status", [
    ({"content_type": "application/json"}, 200),
    ({}, 415),
    ({"content_type": "text/plain"}, 415),
    ({"content_type": "application/json", "origin": "http://evil.example"}, 403),
    ({"content_type": "text/plain", "origin": "http://evil.example"}, 403),  # a cross-site "simple" POST
    ({"content_type": "application/json", "origin": ALLOWED}, 200),
    ({"content_type": "application/json", "host": "rebound.example:80"}, 403),  # DNS rebinding
    ({"content_type": "application/json", "host": "localhost"}, 403),  # no port: port 80
])
def test_body_type_origin_and_host_rules_over_a_socket(port, headers, status):
    raw = request("POST", "/v1/predict", port, BODY, **headers)
    answer_status, answer_headers, body = exchange(port, raw)
    assert answer_status == status, body
    assert answer_headers["content-type"] == "application/json" and "\n" not in body.decode()
    if headers.get("origin") == ALLOWED:
        assert answer_headers["access-control-allow-origin"] == ALLOWED
    else:
        assert "access-control-allow-origin" not in answer_headers


def test_a_completion_whose_client_hangs_up_is_stopped(port, generator):
    generator.steps = 10**9  # only a stop ends it
    generator.started.clear()
    generator.stopped.clear()
    body = b'{"drawing": [[[10, 20.5, 30], [5, 6, 7.25]]], "word": "cat"}'
    try:
        with connect(port) as sock:
            sock.sendall(request("POST", "/v1/complete", port, body, content_type="application/json"))
            assert generator.started.wait(30)
        assert generator.stopped.wait(30), "the completion went on after its client left"
    finally:
        generator.steps = 3
    raw = request("POST", "/v1/complete", port, body, content_type="application/json")
    status, _, body = exchange(port, raw)
    assert status == 200 and json.loads(body)["strokes"]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_client_errors_never_log_a_traceback(port):
    """Hostile and broken clients: huge coordinates, NaN, broken JSON, a body cut off by a hang-up, bytes that
    are not HTTP. Each gets its answer (or is dropped) and nothing is logged with a traceback."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "quickdraw_tf")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        for value in ("1e300", "-1.7e308", "123456789012345678901234567890", "NaN", "1e999"):
            body = f'{{"drawing": [[[10, {value}, 30], [5, 6, 7]]]}}'.encode()
            raw = request("POST", "/v1/predict", port, body, content_type="application/json")
            assert exchange(port, raw)[0] == 422
        raw = request("POST", "/v1/predict", port, b'{"drawing": [[[1, 2]', content_type="application/json")
        assert exchange(port, raw)[0] == 400
        with connect(port) as sock:  # the client hangs up halfway through its body
            sock.sendall(request("POST", "/v1/predict", port, BODY, content_type="application/json")[:-10])
        with connect(port) as sock:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")  # e.g. TLS
            assert read_response(sock)[0] in (0, 400)
        assert exchange(port, request("GET", "/healthz", port))[0] == 200
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert not [r for r in handler.records if r.exc_info or r.levelno >= logging.ERROR], handler.records
