"""Listening sockets and, for ``SIMULATOR_WORKERS`` > 1, worker processes with one socket each.

uvicorn's own supervisor gives all its workers one listening socket, and whichever worker wakes first accepts
every connection waiting. With 2 workers and 2,000 connections we measured splits of 1,165/875 and
2,020/20: one worker answered everything, late, while the other idled. Here each worker gets its own
socket, bound to the same address with ``SO_REUSEPORT``, and the kernel spreads connections over them by a
hash of their addresses (Linux, like the image).

The supervisor is small on purpose: start the workers; restart one that dies after it has been serving; on
SIGTERM or SIGINT stop them all (each drains its requests, like a single server) and exit 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from simulator.errors import StartupError
from simulator.peers import Mesh

log = logging.getLogger("simulator")

BACKLOG = 2048  # uvicorn's default
# A worker that dies sooner than this after starting is broken, not unlucky: stop instead of restarting.
_MIN_LIFETIME_S = 5.0


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler that exits 0.

    uvicorn re-raises a handled SIGTERM once it has drained; outside PID 1 (under tini, ECS's init, a shell)
    that would exit 143. Installed before uvicorn runs, which restores it before re-raising, it makes a
    drained stop exit 0.
    """
    raise SystemExit(0)


def listen(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one address, or a StartupError naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        # A plain bind first, so a port already in use stops start-up: with SO_REUSEPORT alone, a second
        # simulator on the same port would join the first one's group and silently take part of its traffic.
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        for _ in range(count):
            sock = socket.socket(family)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # SIMULATOR_PORT=0: the others join the port the first one got
            sock.listen(BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        where = f"{host}:{port} (SIMULATOR_HOST, SIMULATOR_PORT)"
        raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sockets


def supervise(sockets: list[socket.socket], options: dict[str, Any], graceful_timeout: float) -> int:
    """Run one worker per socket until SIGTERM or SIGINT; ``options`` are uvicorn.Config keyword arguments."""
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # The workers' names for each other (simulator/peers.py): unique to this supervisor.
    group = f"{os.getpid()}-{secrets.token_hex(4)}"
    restarts = 0

    def start(index: int) -> tuple[BaseProcess, float]:
        mesh = Mesh(group, index, len(sockets))
        process = context.Process(
            target=_worker, args=(sockets[index], options, mesh, restarts), daemon=False
        )
        process.start()
        return process, time.monotonic()

    workers = [start(i) for i in range(len(sockets))]
    status = 0
    while not stop.wait(0.25):
        for i, (process, started) in enumerate(workers):
            if process.is_alive():
                continue
            if time.monotonic() - started < _MIN_LIFETIME_S:
                log.error(
                    "worker %d exited with %s right after starting; stopping", process.pid, process.exitcode
                )
                status = 1
                stop.set()
                break
            log.warning("worker %d exited with %s; starting another", process.pid, process.exitcode)
            restarts += 1
            workers[i] = start(i)
    for process, _ in workers:
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker stops accepting, drains, exits
    for process, _ in workers:
        process.join(graceful_timeout + 5)
        if process.is_alive():
            process.kill()
            process.join()
    for sock in sockets:
        sock.close()
    return status


def _worker(sock: socket.socket, options: dict[str, Any], mesh: Mesh, restarts: int) -> None:
    import uvicorn

    from simulator.app import serve_app

    signal.signal(signal.SIGTERM, exit_cleanly)
    # Ctrl-C reaches every process of the group, and the supervisor stops the workers itself: until uvicorn
    # installs its handlers, a worker still starting must not die with a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    app = serve_app(mesh=mesh, connections=connection_counter(options), restarts=restarts)
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


def connection_counter(options: dict[str, Any]) -> Any:
    """What counts open connections: this project's protocol does, uvicorn's stock one cannot be asked."""
    if isinstance(options.get("http"), str):
        return None
    from simulator.protocol import open_connections

    return open_connections
