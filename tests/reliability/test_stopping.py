"""Stopping a real server with requests in flight: Ctrl-C and SIGTERM drain and exit 0, with one worker and
with two; requests still waiting when ``SIMULATOR_GRACEFUL_TIMEOUT`` is up get the fake's own 503 with
``Connection: close`` (never 500) and the log says so once, without a traceback."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import start_server

pytestmark = [pytest.mark.reliability, pytest.mark.server]
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"


async def fetch(port: int) -> tuple[int, bytes, bytes]:
    """(status, head, body) of one request on its own connection; status 0 when none came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {PATIENT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()  # every answer closes here: keep-alive is off while stopping
    finally:
        writer.close()
    if not data:
        return 0, b"", b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower(), body


def stop_during(
    proc: subprocess.Popen[bytes], port: int, count: int, signals: list[signal.Signals]
) -> list[tuple[int, bytes, bytes]]:
    async def run() -> list[tuple[int, bytes, bytes]]:
        requests = asyncio.gather(*(fetch(port) for _ in range(count)))
        await asyncio.sleep(0.5)
        for sig in signals:
            proc.send_signal(sig)
            await asyncio.sleep(0.3)
        return list(await requests)

    return asyncio.run(run())


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_drains_and_exits_0(tmp_path: Path, workers: str, sig: signal.Signals) -> None:
    env = {"SIMULATOR_PLUGINS": "eligibility", "ELID_DELAY_SECONDS": "1.5", "SIMULATOR_WORKERS": workers}
    proc, base = start_server(env, tmp_path / "server.log")
    results = stop_during(proc, int(base.rsplit(":", 1)[1]), 40, [sig])
    assert [status for status, _, _ in results] == [200] * 40
    assert proc.wait(timeout=20) == 0
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log
    assert "KeyboardInterrupt" not in log


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    "signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]], ids=["late", "forced"]
)
def test_requests_cut_short_get_the_fakes_503_not_500(
    tmp_path: Path, workers: str, signals: list[signal.Signals]
) -> None:
    """Late: 4 s delays against a 1 s graceful timeout. Forced: a second Ctrl-C, which stops at once."""
    env = {
        "SIMULATOR_PLUGINS": "eligibility",
        "ELID_DELAY_SECONDS": "4",
        "SIMULATOR_GRACEFUL_TIMEOUT": "1",
        "SIMULATOR_WORKERS": workers,
    }
    proc, base = start_server(env, tmp_path / "server.log")
    began = time.monotonic()
    results = stop_during(proc, int(base.rsplit(":", 1)[1]), 30, signals)
    took = time.monotonic() - began
    code = proc.wait(timeout=20)
    log = (tmp_path / "server.log").read_text()
    assert [status for status, _, _ in results] == [503] * 30, log[-3000:]
    assert took < 3.5  # none waited out its 4 s delay
    for _, head, body in results:
        assert b"connection: close" in head
        outcome = json.loads(body)
        assert outcome["resourceType"] == "OperationOutcome"
    assert code == 0
    assert "Traceback" not in log
    assert " 500 " not in log
    summaries = [
        line for line in log.splitlines() if "still waiting after SIMULATOR_GRACEFUL_TIMEOUT" in line
    ]
    assert len(summaries) == int(workers), log[-3000:]
