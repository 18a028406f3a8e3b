"""Listening sockets and, for ``SIMULATOR_WORKERS`` > 1, worker processes with one socket each.

uvicorn's own supervisor gives all its workers one listening socket, and whichever worker wakes first accepts
every connection waiting. With 2 workers and 2,000 connections we measured splits of 1,165/875 and
2,020/20: one worker answered everything, late, while the other idled. Here each worker gets its own
socket, bound to the same address with ``SO_REUSEPORT``, and the kernel spreads connections over them by a
hash of their addresses (Linux, like the image).

The supervisor starts the workers; replaces one that dies (with a backoff when deaths come quickly, a log
line each) or hangs (its heartbeat stops); stops only when a worker keeps failing before it ever serves; on
SIGTERM or SIGINT stops them all (each drains its requests, like a single server) and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from simulator.errors import StartupError
from simulator.peers import Mesh

log = logging.getLogger("simulator")

BACKLOG = 2048  # uvicorn's default
#: A worker whose event loop has not ticked for this long is hung (blocked): it is killed and replaced.
HANG_S = 15.0
#: A worker that has not begun serving this long after its start is stuck: killed, and counted as failing.
STARTUP_S = 60.0
#: Workers of one slot failing this many times in a row before serving stop the server.
START_FAILURES = 5
_HEARTBEAT_S = 0  # uvicorn beats once a second at most (its tick checks then); 0: at every check
_BACKOFF_S = 0.5  # the wait before the second quick restart in a row; doubled for each further one
_MAX_BACKOFF_S = 30.0
_STEADY_S = 30.0  # a worker that lived this long resets the backoff
_FILES_KEPT = 64


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


def raise_file_limit(max_connections: int, log: logging.Logger, *, asked: bool = False) -> int:
    """Raise the soft file limit to the hard one (each connection is a file; Docker's default soft limit
    is 1,024) and say so; the connections a worker may hold: ``max_connections``, or fewer when the limit
    leaves less room (64 files kept for logs, Redis, the workers' mesh); ``asked``: the setting was given,
    so a cut is worth a warning."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    limit = soft
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            limit = wanted
        except (ValueError, OSError):
            pass
    if limit == resource.RLIM_INFINITY:
        limit = 1 << 20
    room = max(limit - _FILES_KEPT, 16)
    allowed = min(max_connections, room)
    raised = f" (raised from {soft})" if limit != soft else ""
    log.info("file limit %d%s: up to %d connections per worker", limit, raised, allowed)
    if allowed < max_connections and asked:
        log.warning(
            "SIMULATOR_MAX_CONNECTIONS=%d is more than the file limit allows: %d per worker",
            max_connections,
            allowed,
        )
    return allowed


@dataclass
class _Slot:
    """One worker's place: its process (None while waiting to restart), its heartbeat and its history."""

    index: int
    heartbeat: Any  # a shared double: time.monotonic() of the worker's last event-loop tick, 0 before
    process: BaseProcess | None = None
    started: float = 0.0
    ready_at: float | None = None  # when its first heartbeat came: it has been serving since
    due: float = 0.0  # when to start the next one
    failed_starts: int = 0  # in a row: exits with an error before ever serving
    quick_deaths: int = 0  # in a row: deaths within _STEADY_S of starting, for the backoff
    stuck: bool = False  # killed for not starting within STARTUP_S: a failed start


def supervise(sockets: list[socket.socket], options: dict[str, Any], graceful_timeout: float) -> int:
    """Run one worker per socket until SIGTERM or SIGINT; ``options`` are uvicorn.Config keyword arguments.

    A worker that dies is replaced, with a backoff when its predecessors died quickly too, and one log line
    each time; one whose event loop stops ticking for :data:`HANG_S` is killed and replaced. The server
    stops (exit 1) only when a worker fails :data:`START_FAILURES` times in a row before ever serving: a
    broken setting or plugin, not an unlucky kill (a worker killed by a signal, such as the OOM killer's,
    is always replaced).
    """
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # The workers' names for each other (simulator/peers.py): unique to this supervisor.
    group = f"{os.getpid()}-{secrets.token_hex(4)}"
    restarts = 0
    slots = [_Slot(i, context.Value("d", 0.0, lock=False)) for i in range(len(sockets))]
    # The protocol class travels by name: its limits (a class attribute) are set again in each worker.
    limits = getattr(options.get("http"), "limits", None)

    def start(slot: _Slot) -> None:
        slot.heartbeat.value = 0.0
        mesh = Mesh(group, slot.index, len(sockets))
        process = context.Process(
            target=_worker,
            args=(sockets[slot.index], options, mesh, restarts, slot.heartbeat, limits),
            daemon=False,
        )
        process.start()
        slot.process, slot.started, slot.ready_at = process, time.monotonic(), None

    for slot in slots:
        start(slot)
    status = 0
    while not stop.wait(0.25):
        now = time.monotonic()
        for slot in slots:
            process = slot.process
            if process is None:
                if now >= slot.due:
                    restarts += 1
                    start(slot)
                continue
            beat = slot.heartbeat.value
            if slot.ready_at is None and beat:
                slot.ready_at, slot.failed_starts = now, 0
            if process.is_alive():
                if slot.ready_at is None and now - slot.started > STARTUP_S:
                    log.error(
                        "worker %d has not started serving in %.0f s; killing it",
                        process.pid,
                        now - slot.started,
                    )
                    slot.stuck = True
                    process.kill()
                    process.join(5)
                elif slot.ready_at is not None and now - beat > HANG_S:
                    log.error(
                        "worker %d: its event loop has not run for %.0f s; killing it",
                        process.pid,
                        now - beat,
                    )
                    process.kill()
                    process.join(5)
                else:
                    continue
            code = process.exitcode
            if code is None:  # killed but not gone yet: look again at the next tick
                continue
            pid = process.pid
            process.close()  # its pipe and sentinel: a long test restarts workers many times
            slot.process, slot.due = None, now
            stuck, slot.stuck = slot.stuck, False
            if slot.ready_at is None and (stuck or code > 0):
                slot.failed_starts += 1
                if slot.failed_starts >= START_FAILURES:
                    log.error(
                        "worker %d exited with %s before serving, %d times in a row; stopping",
                        pid,
                        code,
                        slot.failed_starts,
                    )
                    status = 1
                    stop.set()
                    break
            lived = now - slot.started
            slot.quick_deaths = slot.quick_deaths + 1 if lived < _STEADY_S else 0
            wait = (
                min(_BACKOFF_S * 2 ** (slot.quick_deaths - 1), _MAX_BACKOFF_S) if slot.quick_deaths else 0.0
            )
            how = f"signal {-code}" if code < 0 else f"status {code}"
            log.warning(
                "worker %d exited (%s) after %.1f s%s; starting another in %.1f s",
                pid,
                how,
                lived,
                "" if slot.ready_at is not None else ", before serving",
                wait,
            )
            slot.due = now + wait
    for slot in slots:
        if slot.process is not None and slot.process.is_alive():
            slot.process.terminate()  # SIGTERM: the worker stops accepting, drains, exits
    for slot in slots:
        if slot.process is None:
            continue
        slot.process.join(graceful_timeout + 5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
    for sock in sockets:
        sock.close()
    return status


def _worker(
    sock: socket.socket, options: dict[str, Any], mesh: Mesh, restarts: int, heartbeat: Any, limits: Any
) -> None:
    import uvicorn

    from simulator.app import report_stop, serve_app

    signal.signal(signal.SIGTERM, exit_cleanly)
    # Ctrl-C reaches every process of the group, and the supervisor stops the workers itself: until uvicorn
    # installs its handlers, a worker still starting must not die with a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if limits is not None:
        from simulator.protocol import configured

        configured(limits)  # the one place that sets them, as in the supervisor's process
    app = serve_app(mesh=mesh, connections=connection_counter(options), restarts=restarts)

    async def beat() -> None:  # uvicorn calls it from its main loop's tick: proof that the loop runs
        heartbeat.value = time.monotonic()

    config = uvicorn.Config(app, callback_notify=beat, timeout_notify=_HEARTBEAT_S, **options)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        report_stop(app)


def connection_counter(options: dict[str, Any]) -> Any:
    """What counts open connections: this project's protocol does, uvicorn's stock one cannot be asked."""
    if isinstance(options.get("http"), str):
        return None
    from simulator.protocol import open_connections

    return open_connections
