"""Hostile and careless connections against a real server: half-closed clients, oversized and slow request
heads, bodies past the limit on any route, and more idle connections than the file limit allows.

Each case asserts what the client gets and how fast, from raw sockets (an HTTP client library would refuse
to send most of these).
"""

from __future__ import annotations

import resource
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_env, free_port, simulator_command, start_server, stop_servers

pytestmark = [pytest.mark.reliability, pytest.mark.server]
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    env = {"SIMULATOR_PLUGINS": "health,eligibility", "SIMULATOR_HEADER_TIMEOUT": "2"}
    proc, base = start_server(env, tmp_path / "server.log")
    yield "127.0.0.1", int(base.rsplit(":", 1)[1])
    stop_servers([proc])


def exchange(
    address: tuple[str, int], payload: bytes, *, half_close: bool = False, timeout: float = 5
) -> bytes:
    """Send ``payload``, optionally shut the sending side, and read until the server closes."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_half_closed_client_gets_its_answer(server: tuple[str, int]) -> None:
    answer = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", half_close=True)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"healthy")
    # Also when the answer is not ready yet at the shutdown: a delayed route.
    delayed = exchange(server, f"GET {PATIENT} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), half_close=True)
    assert status_of(delayed) == 200
    assert delayed.rstrip().endswith(b"}")


def test_a_half_close_after_pipelined_requests_gets_every_answer(server: tuple[str, int]) -> None:
    post = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    get = f"GET {PATIENT} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    answers = exchange(server, post + get + get, half_close=True)
    assert answers.count(b"HTTP/1.1 ") == 3, answers[:300]


def test_a_body_cut_short_by_a_half_close_closes_the_connection(server: tuple[str, int]) -> None:
    began = time.monotonic()
    cut = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"
    exchange(server, cut, half_close=True)  # returns once the server has closed
    assert time.monotonic() - began < 2


def test_oversized_request_heads_are_refused_with_their_status(server: tuple[str, int]) -> None:
    long_url = b"GET /health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status_of(exchange(server, long_url)) == 414
    many = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n"
    assert status_of(exchange(server, many)) == 431
    assert (
        status_of(exchange(server, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")) == 431
    )
    # At the limits, still served.
    fits = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(98)) + b"\r\n"
    assert status_of(exchange(server, fits[:-2] + b"Connection: close\r\n\r\n")) == 200


def test_a_32_mb_header_is_refused_before_it_is_read_and_health_answers_meanwhile(
    server: tuple[str, int],
) -> None:
    sent = [0]
    answer: list[bytes] = []

    def flood() -> None:
        with socket.create_connection(server, timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"a" * 65536
            try:
                while sent[0] < 32 << 20:
                    sock.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:  # the server answered and closed: the rest is never read
                pass
            try:
                answer.append(sock.recv(200))
            except OSError:
                answer.append(b"")

    flooding = threading.Thread(target=flood)
    flooding.start()
    took = []
    while flooding.is_alive() or not took:
        began = time.monotonic()
        assert httpx.get(f"http://{server[0]}:{server[1]}/health", timeout=5).status_code == 200
        took.append(time.monotonic() - began)
    flooding.join()
    print(
        f"\nrefused after {sent[0] / 1e6:.1f} MB sent of 33.5; "
        f"/health meanwhile: max {max(took) * 1000:.1f} ms"
    )
    assert sent[0] < 8 << 20  # what the kernel's buffers took before the server closed
    assert answer[0].startswith(b"HTTP/1.1 431") or answer[0] == b""
    assert max(took) < 0.5


def test_a_body_past_the_limit_gets_the_fakes_own_413_on_any_route(server: tuple[str, int]) -> None:
    # The eligibility fake's shape (an OperationOutcome), on a GET whose handler never reads a body.
    head = f"GET {PATIENT} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".encode()
    answer = exchange(server, head + b"x" * 1000)
    assert status_of(answer) == 413
    assert b"connection: close" in answer.lower()
    assert b'"resourceType":"OperationOutcome"' in answer.replace(b" ", b"")
    # Within the limit, the same request is answered as usual.
    fits = f"GET {PATIENT} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc".encode()
    assert status_of(exchange(server, fits)) == 200


def test_slow_request_heads_are_closed_after_the_header_timeout(server: tuple[str, int]) -> None:
    began = time.monotonic()
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        received = b""
        try:
            while True:  # slowloris: a byte a second, never the end of the headers
                sock.sendall(b"X")
                chunk = sock.recv(65536) if _readable(sock, 1.0) else b"-"
                if not chunk:
                    break
                if chunk != b"-":
                    received += chunk
        except OSError:
            pass
    waited = time.monotonic() - began
    assert received.startswith(b"HTTP/1.1 408"), received
    assert 2 <= waited < 5  # SIMULATOR_HEADER_TIMEOUT=2, swept once a second
    # A connection that sends nothing is closed quietly.
    with socket.create_connection(server, timeout=10) as silent:
        began = time.monotonic()
        assert silent.recv(100) == b""
        assert 2 <= time.monotonic() - began < 5


def _readable(sock: socket.socket, timeout: float) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


def test_more_idle_connections_than_the_file_limit_allows(tmp_path: Path) -> None:
    """1,100 idle connections against a worker whose file limit is 1,024: new clients are served again
    once the idle ones are closed (the oldest idle give way to new ones at the connection limit)."""
    env = {"SIMULATOR_PLUGINS": "health", "SIMULATOR_HEADER_TIMEOUT": "30"}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2400:  # the test itself holds 1,100 sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    log = tmp_path / "server.log"
    with log.open("wb") as out:
        port = free_port()
        proc = subprocess.Popen(
            simulator_command(),
            env=clean_env(env) | {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=low_limit,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        idle = []
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        began = time.monotonic()
        served = None
        statuses = []
        while time.monotonic() - began < 40:
            try:
                statuses.append(httpx.get(f"{base}/health", timeout=2).status_code)
            except httpx.TransportError:
                statuses.append(0)
            if statuses[-1] == 200:
                served = time.monotonic() - began
                break
            time.sleep(0.1)
        for sock in idle:
            sock.close()
        text = log.read_text()
        print(f"\nwith 1,100 idle connections a new client was served after {served} s ({statuses})")
        assert served is not None, text[-2000:]
        # The connection limit (the file limit less 64) is reached: until the oldest idle connections are a
        # second old, a new one gets 503 (never a hang); then one of them gives way to each new client.
        assert set(statuses) <= {200, 503}
        assert served < 5
        assert "file limit 1024: up to 960 connections per worker" in text
        assert text.count("connections open in this worker (SIMULATOR_MAX_CONNECTIONS)") == 1
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=15)
