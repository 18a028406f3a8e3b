"""Instructions per request of a one-worker server, counted by callgrind (deterministic, unlike req/s).

Starts ``simulator serve`` (SIMULATOR_WORKERS=1, defaults otherwise) under ``valgrind --tool=callgrind``
twice: each run warms up, then sends ``N`` keep-alive requests over a few connections, and stops the server.
The difference of the two runs' total instructions over the difference of their ``N`` is the cost of one
request: start-up, warm-up and shutdown cancel. Usage::

    python bench/instructions.py [--path /eligibility-signposting-api/patient-check/9686368973]
        [--token] [--small 2000] [--large 4000] [--env NAME=VALUE ...] [--keep DIR]

``--token`` sends ``POST /oauth2/token`` instead, a client-credentials grant with a fresh client assertion
(its own ``jti``) each time, as ``bench/token.lua`` does: the structural validation's cost per token.

``--keep DIR`` keeps each run's callgrind output there (``DIR/<N>/``), for ``callgrind_annotate``: the
difference of the two runs' profiles, function by function, is where one request's instructions go.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 4
WARMUP = 500


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


_JTIS = itertools.count()
_HEADER = _b64({"alg": "RS512", "typ": "JWT", "kid": "bench-1"})


def _token_request() -> bytes:
    """A client-credentials POST with a client assertion no earlier request used (structurally valid; the
    signature is filler, as the structural validation does not check it)."""
    claims = {"iss": "bench", "sub": "bench", "jti": f"jti-{next(_JTIS)}", "exp": int(time.time()) + 300}
    assertion = f"{_HEADER}.{_b64(claims)}.c2lnbmF0dXJl"
    body = (
        "grant_type=client_credentials&client_assertion_type="
        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + assertion
    ).encode()
    head = (
        "POST /oauth2/token HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"content-type: application/x-www-form-urlencoded\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _drive(port: int, path: str | None, count: int) -> None:
    """``count`` requests over ``CONNECTIONS`` keep-alive connections, each waiting for its answer: a GET of
    ``path``, or a token request when ``path`` is None."""
    get = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    try:
        sent = 0
        while sent < count:
            batch = socks[: min(CONNECTIONS, count - sent)]
            for sock in batch:
                sock.sendall(get if path is not None else _token_request())
            for sock in batch:
                _read_answer(sock)
            sent += len(batch)
    finally:
        for sock in socks:
            sock.close()


_NOT_OK = [0]  # answers other than 200 (an armed status fault's)


def _read_answer(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise SystemExit(f"unexpected answer: {head[:80]!r}")
    if not head.startswith(b"HTTP/1.1 200"):
        _NOT_OK[0] += 1  # an armed fault's answers count too: reported, not refused
    match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed mid-body")
        body += chunk


def _run(count: int, path: str | None, env: dict[str, str], out: Path) -> int:
    port = _free_port()
    environment = {**os.environ, **env, "SIMULATOR_WORKERS": "1", "SIMULATOR_PORT": str(port)}
    environment.setdefault("PYTHONHASHSEED", "0")
    command = [
        "valgrind", "--tool=callgrind", "--trace-children=yes",
        f"--callgrind-out-file={out}/callgrind.out.%p",
        sys.executable, "-m", "simulator", "serve",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=environment, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        _wait_up(port, time.monotonic() + 300)
        _drive(port, path, WARMUP)
        _drive(port, path, count)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=300)
    total = 0
    for file in out.glob("callgrind.out.*"):
        for line in file.read_text().splitlines():
            if line.startswith("totals:") or line.startswith("summary:"):
                total += int(line.split()[1])
                break
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="/eligibility-signposting-api/patient-check/9686368973")
    parser.add_argument("--token", action="store_true", help="POST /oauth2/token instead of GET --path")
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=4000)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    parser.add_argument("--keep", type=Path, help="keep each run's callgrind output under DIR/<N>/")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    totals = []
    for count in (args.small, args.large):
        with tempfile.TemporaryDirectory() as tmp:
            totals.append(_run(count, None if args.token else args.path, env, Path(tmp)))
            if args.keep is not None:
                kept = args.keep / str(count)
                kept.mkdir(parents=True, exist_ok=True)
                for file in Path(tmp).glob("callgrind.out.*"):
                    shutil.copy(file, kept)
    per_request = (totals[1] - totals[0]) / (args.large - args.small)
    print(f"totals {totals[0]:,} ({args.small}) {totals[1]:,} ({args.large})")
    print(f"instructions per request: {per_request:,.0f}")
    if _NOT_OK[0]:
        print(f"answers other than 200: {_NOT_OK[0]:,}")


if __name__ == "__main__":
    main()
