"""The uvicorn protocol additions and the timing helpers, on a real uvloop event loop."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import subprocess
import sys
import time
from typing import Any

import pytest
import simulator_spiky
import uvicorn
import uvloop
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from simulator import protocol
from simulator.app import GC_YOUNG_THRESHOLD, create_app, sleep_at_least, timer_seconds
from simulator.host import PluginHost
from simulator.http import Message
from simulator.protocol import CoalescingHttpToolsProtocol, _CoalescingTransport, _respond_later
from tests.conftest import clean_env, free_port
from tests.rawhttp import many

START: Message = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
BODY: Message = {"type": "http.response.body", "body": b"ok"}


class RecordingTransport:
    """The socket end of a transport: records each write (one write = one send system call)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def cycle_on(loop: asyncio.AbstractEventLoop, raw: RecordingTransport) -> RequestResponseCycle:
    transport: Any = _CoalescingTransport(raw, loop)  # type: ignore[arg-type]
    return RequestResponseCycle(
        scope={"type": "http", "method": "GET", "http_version": "1.1"},  # type: ignore[typeddict-item]
        transport=transport,
        flow=FlowControl(transport),
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )


def test_timer_seconds_asks_for_a_whole_millisecond_past_the_delay() -> None:
    assert timer_seconds(2.0) == 2.001
    assert timer_seconds(0.0004) == 0.002
    assert all(timer_seconds(s / 7919) >= s / 7919 + 0.001 for s in range(1, 20_000))


def test_sleep_at_least_never_returns_early_on_uvloop() -> None:
    async def worst_early() -> float:
        worst = 0.0
        for i in range(150):
            busy_until = time.monotonic() + (i % 7) * 0.0003  # start at varied points within a millisecond
            while time.monotonic() < busy_until:
                pass
            wanted = 0.002 + (i % 5) * 0.0013
            start = time.monotonic()
            await sleep_at_least(wanted)
            worst = min(worst, time.monotonic() - start - wanted)
        return worst

    # Plain asyncio.sleep on uvloop returned up to 1.3 ms early in this loop.
    assert uvloop.run(worst_early()) >= 0


def test_respond_later_writes_the_whole_response_at_once_when_due() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], float | None, float, float]:
        loop = asyncio.get_running_loop()
        raw = RecordingTransport()
        cycle = cycle_on(loop, raw)
        start = time.monotonic()
        done = _respond_later(loop, cycle.send, timer_seconds(0.02), START, BODY)  # type: ignore[arg-type]
        await asyncio.sleep(0.005)
        before = list(raw.writes)
        sent = await done
        return before, raw.writes, sent, start, time.monotonic()

    before, writes, sent, start, end = uvloop.run(scenario())
    assert before == []
    assert sent is not None
    assert start + 0.02 <= sent <= end  # when it was written: what delivered latency is measured to
    assert end - start >= 0.02
    assert len(writes) == 1  # headers and body in one write, made by the timer itself
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\nok")


def test_respond_later_leaves_the_sending_to_the_caller_when_writes_are_paused() -> None:
    async def scenario() -> tuple[float | None, list[bytes]]:
        loop = asyncio.get_running_loop()
        raw = RecordingTransport()
        cycle = cycle_on(loop, raw)
        cycle.flow.pause_writing()
        return await _respond_later(loop, cycle.send, 0.01, START, BODY), raw.writes  # type: ignore[arg-type]

    assert uvloop.run(scenario()) == (None, [])


def test_respond_later_only_waits_when_send_is_not_uvicorns() -> None:
    async def scenario() -> tuple[float | None, float, list[Message]]:
        sent: list[Message] = []

        async def wrapped(message: Message) -> None:  # e.g. a middleware's send
            sent.append(message)

        start = time.monotonic()
        result = await _respond_later(asyncio.get_running_loop(), wrapped, timer_seconds(0.01), START, BODY)
        return result, time.monotonic() - start, sent

    result, elapsed, sent = uvloop.run(scenario())
    assert (result, sent) == (None, [])
    assert elapsed >= 0.01


def test_a_serving_process_freezes_its_start_up_heap_and_collects_less_often() -> None:
    code = (
        "import gc, json; from simulator.app import serve_app; serve_app(); "
        "print(json.dumps([gc.get_threshold(), gc.get_freeze_count()]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env({"SIMULATOR_PLUGINS": "health,eligibility"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    thresholds, frozen = json.loads(result.stdout)
    assert thresholds == [GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:]]
    assert frozen > 10_000  # modules and plugin data


def test_delayed_requests_leave_no_reference_cycles() -> None:
    """Each request's objects must be freed by reference counting, not wait for the collector."""

    async def scenario() -> int:
        host = PluginHost.from_plugins({"spiky": simulator_spiky}, env={"SPIKY_DELAY_SECONDS": "0.05"})
        assert host.plugins["spiky"].delay is not None
        port = free_port()
        config = uvicorn.Config(
            create_app(host),
            host="127.0.0.1",
            port=port,
            loop="none",
            lifespan="off",
            log_level="warning",
            http=CoalescingHttpToolsProtocol,
        )
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.01)
        await many("127.0.0.1", port, "/spiky/quote", 20)  # warm up: first-use caches are not garbage
        gc.collect()
        gc.disable()
        try:
            statuses = [status for status, _ in await many("127.0.0.1", port, "/spiky/quote", 100)]
            assert statuses == [200] * 100
            unreachable = gc.collect()
        finally:
            gc.enable()
            server.should_exit = True
            await serving
        return unreachable

    assert uvloop.run(scenario()) == 0


def test_every_write_path_keeps_the_order_of_the_bytes() -> None:
    loop = uvloop.new_event_loop()
    try:
        raw = RecordingTransport()
        eofs: list[int] = []
        raw.write_eof = lambda: eofs.append(len(raw.writes))  # type: ignore[attr-defined]
        transport = _CoalescingTransport(raw, loop)  # type: ignore[arg-type]
        transport.write(b"a")
        transport.writelines([b"b", b"c"])
        assert raw.writes == []  # still in this loop step
        transport.write_eof()  # must not overtake what is buffered
        assert raw.writes == [b"abc"]
        assert eofs == [1]
        transport.write(b"d")
        aborted: list[bool] = []
        raw.abort = lambda: aborted.append(True)  # type: ignore[attr-defined]
        transport.abort()  # drops the buffer, as the real transport drops its own
        loop.run_until_complete(asyncio.sleep(0))
        assert raw.writes == [b"abc"]
        assert aborted == [True]
    finally:
        loop.close()


def test_the_installed_uvicorn_is_the_pinned_minor_everywhere() -> None:
    """pyproject's pin, the image's lock file and the capability check name the uvicorn that is installed."""
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    minor = protocol.TESTED_UVICORN
    assert ".".join(version("uvicorn").split(".")[:2]) == minor
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if d.startswith("uvicorn")]
    low, high = minor.split(".")
    assert pin == f"uvicorn[standard]>={minor}.0,<{low}.{int(high) + 1}"
    locked = [
        line for line in (root / "requirements.lock").read_text().splitlines() if line.startswith("uvicorn==")
    ]
    assert locked
    assert locked[0].startswith(f"uvicorn=={minor}.")
    assert protocol.incompatibility() is None


def test_the_lock_file_pins_every_installed_runtime_dependency() -> None:
    """The tests run the versions the image installs: requirements.lock's."""
    import re
    from importlib.metadata import version
    from pathlib import Path

    from packaging.markers import Marker

    lock = (Path(__file__).resolve().parents[1] / "requirements.lock").read_text()
    pins = {
        name: pinned
        for name, pinned, marker in re.findall(r"^([a-z0-9_.-]+)==([^ \\;]+)(?: ; ([^\\\n]+))?", lock, re.M)
        # A pin for other Pythons (async-timeout below 3.11.3) is not installed here, as in the image.
        if not marker or Marker(marker.strip()).evaluate()
    }
    assert {"fastapi", "uvicorn", "pluggy", "pydantic", "pydantic-settings", "orjson", "pyjwt"} <= set(pins)
    wrong = {name: (pinned, version(name)) for name, pinned in pins.items() if version(name) != pinned}
    assert wrong == {}


def test_another_uvicorn_falls_back_to_the_stock_protocol_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(uvicorn, "__version__", "0.99.1")
    assert protocol.incompatibility() == f"uvicorn 0.99.1 is not the tested {protocol.TESTED_UVICORN}.x"
    with caplog.at_level(logging.WARNING, logger="test.fallback"):
        chosen = protocol.choose(logging.getLogger("test.fallback"), protocol.Limits())
    assert chosen == "httptools"
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "uvicorn 0.99.1 is not the tested 0.54.x"
    ]


@pytest.mark.server
def test_a_server_on_the_stock_protocol_still_serves_and_delays() -> None:
    """The application does not need this module's additions: with the fallback, delays still hold."""
    port = free_port()
    code = (
        "import uvicorn, sys; uvicorn.__version__ = '0.99.1'; "
        "from simulator.cli import main; sys.exit(main(['serve']))"
    )
    env = clean_env(
        {
            "SIMULATOR_HOST": "127.0.0.1",
            "SIMULATOR_PORT": str(port),
            "SIMULATOR_PLUGINS": "health,spiky",
            "SPIKY_DELAY_SECONDS": "0.3",
        }
    )
    server = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        import httpx

        deadline = time.monotonic() + 15
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        started = time.monotonic()
        assert httpx.get(f"http://127.0.0.1:{port}/spiky/quote", timeout=5).status_code == 200
        assert 0.3 <= time.monotonic() - started < 1.0
    finally:
        server.terminate()
        _, err = server.communicate(timeout=15)
    assert err.count("not the tested") == 1, err
