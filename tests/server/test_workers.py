"""``SIMULATOR_WORKERS`` > 1 on a real server: even spread of connections, port errors, stop and restart."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_env, simulator_command, start_server, stop_servers
from tests.procs import workers_of
from tests.rawhttp import many

pytestmark = pytest.mark.server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Two workers, health and spiky (the core's delayed example plugin)."""
    env = {"SIMULATOR_WORKERS": "2", "SIMULATOR_PLUGINS": "health,spiky", "SPIKY_DELAY_SECONDS": "1"}
    proc, base = start_server(env, tmp_path / "server.log")
    yield proc, base
    stop_servers([proc])


def sockets(pid: int) -> int:
    """The TCP sockets a process holds (not the Unix sockets its workers talk to each other over)."""
    tcp = {
        line.split()[9]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for line in Path(table).read_text().splitlines()[1:]
    }
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        count += target.startswith("socket:[") and target[8:-1] in tcp
    return count


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_connections_are_spread_over_the_workers(server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, base = server
    port = int(base.rsplit(":", 1)[1])
    workers = workers_of(proc.pid)
    assert len(workers) == 2
    before = {w: sockets(w) for w in workers}

    async def hold(count: int) -> dict[int, int]:
        # All at once, as load generators do: a shared accept queue would hand such a burst to one worker.
        streams = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(count)))
        for _, writer in streams:
            writer.write(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        for reader, _ in streams:
            assert (await reader.readuntil(b"healthy")).startswith(b"HTTP/1.1 200")
        held = {w: sockets(w) - before[w] for w in workers}
        for _, writer in streams:
            writer.close()
        return held

    held = asyncio.run(hold(200))
    assert 198 <= sum(held.values()) <= 202, held  # the start-up check's connection may close meanwhile
    # By a hash of the client ports: 100 each give or take; a shared accept queue gave one worker them all.
    assert all(60 <= n <= 140 for n in held.values()), held


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_stops_start_up_with_one_line(workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port), "SIMULATOR_WORKERS": workers}
        result = subprocess.run(
            simulator_command(), env=clean_env(env), capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"simulator: error: cannot listen on 127.0.0.1:{port} (SIMULATOR_HOST, SIMULATOR_PORT): "
        "Address already in use"
    ]


def test_sigterm_lets_every_worker_finish_its_delayed_requests(
    server: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, base = server
    port = int(base.rsplit(":", 1)[1])
    workers = workers_of(proc.pid)

    async def stop_during(count: int) -> list[tuple[int, float]]:
        delayed = asyncio.ensure_future(many("127.0.0.1", port, "/spiky/quote", count))
        await asyncio.sleep(0.4)
        proc.send_signal(signal.SIGTERM)
        return await delayed

    results = asyncio.run(stop_during(40))
    assert [status for status, _ in results] == [200] * 40
    assert min(seconds for _, seconds in results) >= 1.0
    assert proc.wait(timeout=15) == 0
    assert not [w for w in workers if Path(f"/proc/{w}").exists()]


def test_a_worker_that_dies_is_replaced(server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, base = server
    first = workers_of(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    wait_for(lambda: len(set(workers_of(proc.pid)) - set(first)) == 1 and len(workers_of(proc.pid)) == 2, 10)
    for _ in range(20):  # both sockets are served again
        assert httpx.get(f"{base}/health", headers={"Connection": "close"}).status_code == 200


def test_the_listening_address_is_logged_once(tmp_path: Path) -> None:
    proc, base = start_server({"SIMULATOR_WORKERS": "2"}, tmp_path / "log")
    stop_servers([proc])
    assert (tmp_path / "log").read_text().count(f"listening on {base} with 2 worker process(es)") == 1
