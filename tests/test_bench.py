"""A short run of the benchmark harness: it starts, drives and reports. It asserts no speed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.server
def test_bench_smoke_writes_its_tables(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        reason = "wrk is not installed (Debian package wrk): benchmark harness not exercised"
        if os.environ.get("TEST_REQUIRE_BENCH") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--servers",
            "simulator",
            *(["--soak-seconds", "2"] if shutil.which("hey") else []),
            "--out",
            str(tmp_path),
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "results.json").read_text())
    scenarios = {(r["server"], r["scenario"]) for r in report["results"]}
    assert ("simulator", "patient-check (canned)") in scenarios
    assert ("simulator", "2 s delay") in scenarios
    canned = next(r for r in report["results"] if r["scenario"] == "patient-check (canned)")
    assert canned["requests_per_s"] > 0
    assert canned["non_2xx"] == 0
    tables = (tmp_path / "results.md").read_text()
    assert "| simulator | patient-check (canned) |" in tables
    assert "| canned p99 < 5 ms at 64 connections |" in tables  # the targets, computed from the run
    if shutil.which("hey"):  # two 1 s windows of delayed requests: RSS and overshoot per window
        soaked = report["soak"]
        assert len(soaked["windows"]) == 2
        assert all(window["p99_overshoot_ms"] is not None for window in soaked["windows"])
        assert sum(int(count) for count in soaked["statuses"].values()) > 0
        assert "| soak: RSS flat |" in tables
