"""The supervisor of ``SIMULATOR_WORKERS`` > 1 never gives up on a healthy system: a killed worker is
replaced, and so is its replacement killed before it has even started serving; a worker whose event loop
is blocked is detected and replaced; only workers failing at start-up again and again stop the server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_env, free_port, simulator_command, start_server, stop_servers
from tests.procs import workers_of

pytestmark = [pytest.mark.reliability, pytest.mark.server]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    env = {"SIMULATOR_WORKERS": "2", "SIMULATOR_PLUGINS": "health"}
    proc, base = start_server(env, tmp_path / "server.log")
    yield proc, base, tmp_path / "server.log"
    stop_servers([proc])


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def serves(base: str, count: int = 20) -> bool:
    """Every one of ``count`` new connections is answered (the kernel spreads them over both sockets)."""
    try:
        return all(
            httpx.get(f"{base}/health", headers={"Connection": "close"}, timeout=2).status_code == 200
            for _ in range(count)
        )
    except httpx.TransportError:
        return False


def test_a_worker_killed_and_then_its_replacement_leaves_the_server_serving(
    server: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    proc, base, log = server
    first = workers_of(proc.pid)
    os.kill(first[0], signal.SIGKILL)  # at once: no grace period after start-up is needed
    wait_for(lambda: len(set(workers_of(proc.pid)) - set(first)) == 1, 10)
    (replacement,) = set(workers_of(proc.pid)) - set(first)
    time.sleep(1.5)
    os.kill(replacement, signal.SIGKILL)  # as a second out-of-memory kill would
    took = wait_for(lambda: len(workers_of(proc.pid)) == 2 and replacement not in workers_of(proc.pid), 15)
    wait_for(lambda: serves(base), 15)
    assert proc.poll() is None
    text = log.read_text()
    assert text.count("exited (signal 9)") == 2, text
    print(f"\nthe second replacement was running {took:.1f} s after its predecessor's kill")


def test_a_worker_whose_event_loop_is_blocked_is_replaced(
    server: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    proc, base, log = server
    first = workers_of(proc.pid)
    # Both workers have served and sent heartbeats (once a second) by now: the one stopped below is known
    # to have been serving, so its silence is a hang, not a slow start.
    wait_for(lambda: serves(base), 15)
    time.sleep(2.5)
    os.kill(first[0], signal.SIGSTOP)  # its loop stops ticking, as a blocked one does
    try:
        took = wait_for(lambda: first[0] not in workers_of(proc.pid) and len(workers_of(proc.pid)) == 2, 30)
    finally:
        if first[0] in workers_of(proc.pid):
            os.kill(first[0], signal.SIGKILL)  # not replaced: do not leave a stopped process behind
    wait_for(lambda: serves(base), 15)
    assert "its event loop has not run for" in log.read_text()
    print(f"\na stopped worker was replaced {took:.1f} s later")
    assert 14 < took < 25  # HANG_S is 15 s


def test_workers_failing_at_every_start_stop_the_server_in_the_end(tmp_path: Path) -> None:
    # The first start succeeds (the supervisor's own checks pass); every worker then fails while starting:
    # the scenario file the workers read is replaced by a broken one.
    scenario = tmp_path / "scenario.json"
    scenario.write_text('{"phases": [{"at": 0, "name": "normal"}]}')
    env = {"SIMULATOR_WORKERS": "2", "SIMULATOR_PLUGINS": "health", "SIMULATOR_SCENARIO": str(scenario)}
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            simulator_command(),
            env=clean_env(env) | {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: len(workers_of(proc.pid)) == 2 and serves(f"http://127.0.0.1:{port}", 2), 15)
        scenario.write_text("not a scenario")
        for worker in workers_of(proc.pid):
            os.kill(worker, signal.SIGKILL)
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "before serving, 5 times in a row; stopping" in text, text[-3000:]
    assert text.count("starting another in") >= 8  # both slots, four restarts each, with a backoff
