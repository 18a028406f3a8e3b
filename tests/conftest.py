"""Shared fixtures. ``serve`` starts real ``simulator serve`` processes, the way users run the simulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

Serve = Callable[..., str]

# Variables the tests must not inherit from a developer's shell: they would change what a server does.
_SCRUB = ("SIMULATOR_", "ELID_", "APIM_", "LOGIN_", "APP_ROOT_URL", "NBS_URL", "HEALTH_", "SPIKY_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    return base | (env or {})


def run_pytest_project(cwd: Path, target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run pytest as a separate project would: its own folder, warnings as errors, no plugins of ours."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            "-W",
            "error",
            target,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def simulator_command() -> list[str]:
    return [str(Path(sys.executable).with_name("simulator")), "serve"]


def start_server(
    env: dict[str, str] | None, log_path: Path, *, timeout: float = 10.0, base_vars: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """A real ``simulator serve`` on a free loopback port, once it answers: (process, base URL).

    ``base_vars`` are variables set to the server's own base URL (``LOGIN_ROOT_URL``: the issuer).
    """
    port = free_port()
    own = dict.fromkeys(base_vars, f"http://127.0.0.1:{port}")
    full_env = clean_env(env) | own | {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port)}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(simulator_command(), env=full_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"{base}/_simulator/plugins", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"server did not answer within {timeout} s")


def stop_servers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)  # reaped: no ResourceWarning in a later test


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(env) -> base_url``: a real server on a free loopback port, stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        env: dict[str, str] | None = None, *, timeout: float = 10.0, base_vars: tuple[str, ...] = ()
    ) -> str:
        log = tmp_path / f"server-{len(procs)}.log"
        proc, base = start_server(env, log, timeout=timeout, base_vars=base_vars)
        procs.append(proc)
        return base

    yield start
    stop_servers(procs)
