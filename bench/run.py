#!/usr/bin/env python3
"""Benchmark the simulator against nginx and WireMock in one run, on this machine.

    make bench                 # full run (~6 minutes): writes bench/results/results.{md,json} and chart.png
    make bench-smoke           # ~10 s: the harness works end to end; numbers mean nothing

Every server serves the same patient-check body (fetched from the simulator itself). wrk drives each one on
the same cores, one after the other; the headline is the ratio measured in this run. nginx (with its echo
module) and WireMock (the standalone jar from the `wiremock` npm package, on the machine's Java) take part
when they are installed; the results say which were missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PATIENT = "9686368973"
PATH = f"/eligibility-signposting-api/patient-check/{PATIENT}"
SIMULATOR = [str(Path(sys.executable).with_name("simulator")), "serve"]


@dataclass
class Result:
    server: str
    scenario: str
    connections: int
    seconds: float
    requests_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    p99_9_ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    errors: int = 0
    non_2xx: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def wrk(
    url: str, connections: int, seconds: float, script: str | None = None, timeout: str = "10s"
) -> dict[str, Any]:
    """One wrk run; latency percentiles are exact (latency.lua), not wrk's table rounded to 10 ms."""
    threads = 2 if connections >= 2 else 1
    source = (BENCH / "latency.lua").read_text()
    if script:
        source = (BENCH / script).read_text() + "\n" + source
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(source)
        lua.flush()
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout}",
            "-s",
            lua.name,
            url,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120).stdout
    parsed: dict[str, Any] = {"raw": out}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        parsed["rps"] = float(m.group(1))
    for name, microseconds in re.findall(r"^exact-(\S+)-us (\d+)$", out, re.M):
        parsed[name.replace(".", "_")] = int(microseconds) / 1000
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors = sum(int(g) for g in m.groups())
    parsed["errors"] = errors
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    parsed["non_2xx"] = int(m.group(1)) if m else 0
    if m := re.search(r"^signins (\d+)$", out, re.M):  # signin.lua: completed sign-ins
        parsed["signins_per_s"] = int(m.group(1)) / max(1, round(seconds))
    return parsed


def result(
    server: str, scenario: str, connections: int, seconds: float, run: dict[str, Any], **extra: Any
) -> Result:
    return Result(
        server,
        scenario,
        connections,
        seconds,
        requests_per_s=run.get("rps", 0.0),
        p50_ms=run.get("p50", 0.0),
        p90_ms=run.get("p90", 0.0),
        p99_ms=run.get("p99", 0.0),
        p99_9_ms=run.get("p99_9", 0.0),
        min_ms=run.get("min", 0.0),
        max_ms=run.get("max", 0.0),
        errors=run["errors"],
        non_2xx=run["non_2xx"],
        extra=extra,
    )


@contextmanager
def process(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, stdout: Any = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd,
        env=(os.environ | (env or {})),
        cwd=cwd,
        stdout=stdout or subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def simulator_env(port: int, workers: int, **extra: str) -> dict[str, str]:
    return {
        "SIMULATOR_HOST": "127.0.0.1",
        "SIMULATOR_PORT": str(port),
        "SIMULATOR_WORKERS": str(workers),
        "SIMULATOR_LOG_LEVEL": "warning",
        "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth,nhs_login",
        # The issuer and token URL the NHS login scripts' client assertions name (aud).
        "LOGIN_ROOT_URL": f"http://127.0.0.1:{port}",
        **extra,
    }


@contextmanager
def simulator(workers: int, **extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A simulator; its standard output (the access log, EMF records) goes to a file, as a container's
    goes to its log driver, so that writing it costs what it costs in a deployment."""
    port = free_port()
    with (
        tempfile.TemporaryFile() as log,
        process(SIMULATOR, simulator_env(port, workers, **extra), stdout=log) as proc,
    ):
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health")
        yield base, proc


# What observability costs on the canned path: each variant's env, compared with "off" in the same run.
OBSERVABILITY = {
    "metrics and journal off": {"SIMULATOR_METRICS": "false", "SIMULATOR_JOURNAL_SIZE": "0"},
    "metrics and journal on (default)": {},
    "access log json": {"SIMULATOR_ACCESS_LOG": "json"},
}
EVERYTHING_ON = {
    "SIMULATOR_ACCESS_LOG": "json",
    "SIMULATOR_CLOUDWATCH": "emf",
    "SIMULATOR_JOURNAL_BODIES": "true",
}


def observability_cost(workers: int, seconds: float, rounds: int) -> list[Result]:
    """Canned patient-check under each OBSERVABILITY variant, interleaved round by round (machine drift
    hits every variant alike); one row per variant with the median run, every run's req/s in ``extra``."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in OBSERVABILITY}
    for _ in range(rounds):
        for name, env in OBSERVABILITY.items():
            with simulator(workers, **env) as (base, _proc):
                runs[name].append(wrk(base + PATH, 64, seconds))
    rows = []
    for name, done in runs.items():
        median = sorted(done, key=lambda run: run.get("rps", 0.0))[len(done) // 2]
        rps = [run.get("rps", 0.0) for run in done]
        rows.append(result("simulator", f"canned, {name}", 64, seconds, median, all_rps=rps))
    return rows


NGINX_CONF = """
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log error;
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {tmp};
  proxy_temp_path {tmp};
  fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp};
  scgi_temp_path {tmp};
  server {{
    listen 127.0.0.1:{port} backlog=8192;
    keepalive_requests 1000000;
    location /static/ {{ internal; alias {tmp}/static/; default_type application/json; }}
    location ~ ^/eligibility-signposting-api/patient-check/(\\d+)$ {{
      {sleep}
      echo_exec /static/$1.json;
    }}
  }}
}}
"""


@contextmanager
def nginx(body: bytes, delay: float, workers: int) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "static").mkdir()
        (Path(tmp) / "static" / f"{PATIENT}.json").write_bytes(body)
        port = free_port()
        sleep = f"echo_sleep {delay};" if delay else ""
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=workers, tmp=tmp, port=port, sleep=sleep))
        with process(["nginx", "-c", str(conf), "-g", "daemon off;"]):
            base = f"http://127.0.0.1:{port}"
            wait_http(base + PATH)
            yield base


def wiremock_jar() -> Path | None:
    candidates = [
        Path(os.environ.get("WIREMOCK_JAR", "")),
        *sorted((BENCH / ".tools").glob("**/wiremock-standalone-*.jar")),
    ]
    return next((c for c in candidates if c.is_file()), None)


@contextmanager
def wiremock(jar: Path, body: bytes, delay: float, warmup: float) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        mappings = Path(tmp) / "mappings"
        mappings.mkdir()
        response: dict[str, Any] = {
            "status": 200,
            "body": body.decode(),
            "headers": {"Content-Type": "application/json"},
        }
        if delay:
            response["fixedDelayMilliseconds"] = int(delay * 1000)
        stub = {"request": {"method": "GET", "url": PATH}, "response": response}
        (mappings / "patient.json").write_text(json.dumps(stub))
        port = free_port()
        cmd = [
            "java",
            "-Xmx1g",
            "-jar",
            str(jar),
            "--port",
            str(port),
            "--bind-address",
            "127.0.0.1",
            "--root-dir",
            tmp,
            "--async-response-enabled",
            "true",
            "--async-response-threads",
            "50",
            "--no-request-journal",
            "--disable-request-logging",
            "--disable-banner",
            "--jetty-accept-queue-size",
            "8192",
        ]
        with process(cmd):
            base = f"http://127.0.0.1:{port}"
            wait_http(base + PATH, timeout=120)
            if warmup:
                wrk(base + PATH, 64, warmup)  # let the JIT compile the hot path: "warm WireMock"
            yield base


def startup_seconds(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        port = free_port()
        start = time.perf_counter()
        with process(SIMULATOR, simulator_env(port, 1)):
            wait_http(f"http://127.0.0.1:{port}/health")
            times.append(time.perf_counter() - start)
    return times


def in_flight(base: str, proc: subprocess.Popen[bytes], connections: int, seconds: float) -> dict[str, Any]:
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            peak[0] = max(peak[0], rss_mib(proc.pid))

    before = rss_mib(proc.pid)
    sampler = threading.Thread(target=sample)
    sampler.start()
    run = wrk(base + PATH, connections, seconds)
    stop.set()
    sampler.join()
    return {"run": run, "rss_before_mib": round(before, 1), "rss_peak_mib": round(peak[0], 1)}


SOAK_DELAY_SECONDS = 0.05
SOAK_WINDOWS = 10


def soak(base: str, proc: subprocess.Popen[bytes], seconds: float, rate: int) -> dict[str, Any]:
    """A steady rate (hey -q) of requests delayed SOAK_DELAY_SECONDS, for `seconds`, in SOAK_WINDOWS
    back-to-back windows: RSS sampled every 10 s, and each window's p99 overshoot of the delay (a drift
    shows as a trend)."""
    samples = [(0.0, rss_mib(proc.pid))]
    # Enough connections for the rate with every request waiting out its delay (hey -q is per connection).
    concurrency = max(10, math.ceil(rate * SOAK_DELAY_SECONDS * 4))
    window = max(1, round(seconds / SOAK_WINDOWS))
    statuses: dict[str, int] = {}
    windows = []
    start = time.perf_counter()
    for _ in range(max(1, round(seconds / window))):
        cmd = ["hey", "-z", f"{window}s", "-c", str(concurrency), "-q", str(max(1, rate // concurrency))]
        load = subprocess.Popen(
            [*cmd, base + PATH], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        while load.poll() is None:
            time.sleep(min(10.0, window))
            samples.append((round(time.perf_counter() - start, 1), rss_mib(proc.pid)))
        out = load.stdout.read() if load.stdout else ""
        for status, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out):
            statuses[status] = statuses.get(status, 0) + int(count)
        p99 = re.search(r"99%+ in (\d+\.\d+) secs", out)
        windows.append(
            {
                "ends_s": round(time.perf_counter() - start, 1),
                "p99_overshoot_ms": round(float(p99.group(1)) * 1000 - SOAK_DELAY_SECONDS * 1000, 1)
                if p99
                else None,
            }
        )
    return {
        "seconds": seconds,
        "rate": rate,
        "delay_s": SOAK_DELAY_SECONDS,
        "rss_mib": samples,
        "statuses": statuses,
        "windows": windows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="1-second runs: proves the harness, not the speed"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run (10)")
    parser.add_argument("--workers", type=int, default=2, help="simulator and nginx worker processes (2)")
    parser.add_argument("--soak-seconds", type=float, default=0, help="add a steady-rate soak of this length")
    parser.add_argument(
        "--soak-rate", type=int, default=500, help="requests per second during the soak (500)"
    )
    parser.add_argument(
        "--cost-rounds", type=int, default=3, help="interleaved rounds of the observability-cost runs (3)"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--servers", default="simulator,nginx,wiremock", help="which references to run (default: all three)"
    )
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian package wrk)", file=sys.stderr)
        return 2
    seconds = 1.0 if args.smoke else args.seconds
    delay_seconds = 5.0 if args.smoke else max(20.0, args.seconds)
    results: list[Result] = []
    notes: list[str] = []
    servers = set(args.servers.split(","))
    have_nginx = (
        "nginx" in servers
        and shutil.which("nginx") is not None
        and Path("/usr/lib/nginx/modules/ngx_http_echo_module.so").exists()
    )
    jar = wiremock_jar() if shutil.which("java") and "wiremock" in servers else None
    if not have_nginx:
        notes.append("nginx or its echo module is not installed: no nginx reference in this run")
    if jar is None:
        notes.append("WireMock jar or Java not found: no WireMock reference in this run")

    print("simulator: throughput", file=sys.stderr)
    with simulator(args.workers) as (base, _):
        body = urllib.request.urlopen(base + PATH).read()
        for scenario, script, url in (
            ("patient-check (canned)", None, base + PATH),
            ("patient-check (synthetic)", "synthetic.lua", base + "/"),
            ("token (structural)", "token.lua", base + "/oauth2/token"),
            ("health", None, base + "/health"),
            ("nhs login /token", "login_token.lua", base + "/"),
            ("nhs login sign-in (authorize + token)", "signin.lua", base + "/"),
        ):
            run = wrk(url, 64, seconds, script)
            extra = {"signins_per_s": run["signins_per_s"]} if "signins_per_s" in run else {}
            results.append(result("simulator", scenario, 64, seconds, run, **extra))
    print("simulator: what observability costs", file=sys.stderr)
    results += observability_cost(args.workers, seconds, 1 if args.smoke else args.cost_rounds)
    if have_nginx:
        print("nginx: throughput", file=sys.stderr)
        with nginx(body, 0, args.workers) as base:
            results.append(
                result("nginx", "patient-check (canned)", 64, seconds, wrk(base + PATH, 64, seconds))
            )
    if jar is not None:
        print("wiremock: throughput (after warm-up)", file=sys.stderr)
        with wiremock(jar, body, 0, warmup=2 if args.smoke else 15) as base:
            results.append(
                result("wiremock", "patient-check (canned)", 64, seconds, wrk(base + PATH, 64, seconds))
            )

    # Delay fidelity: 2 s fixed delay, 2,000 connections; overshoot = latency - 2 s.
    connections = 200 if args.smoke else 2000
    print(f"delay fidelity: 2 s delay, {connections} connections", file=sys.stderr)
    with simulator(args.workers, ELID_DELAY_SECONDS="2") as (base, proc):
        run = wrk(base + PATH, connections, delay_seconds)
        results.append(result("simulator", "2 s delay", connections, delay_seconds, run))
    if have_nginx:
        with nginx(body, 2, args.workers) as base:
            results.append(
                result(
                    "nginx",
                    "2 s delay",
                    connections,
                    delay_seconds,
                    wrk(base + PATH, connections, delay_seconds),
                )
            )
    if jar is not None:
        with wiremock(jar, body, 2, warmup=0) as base:
            results.append(
                result(
                    "wiremock",
                    "2 s delay",
                    connections,
                    delay_seconds,
                    wrk(base + PATH, connections, delay_seconds),
                )
            )

    many = 500 if args.smoke else 10_000
    print(f"in flight: {many} delayed requests", file=sys.stderr)
    with simulator(args.workers, ELID_DELAY_SECONDS="2") as (base, proc):
        flight = in_flight(base, proc, many, delay_seconds)
        results.append(
            result(
                "simulator",
                "2 s delay, in flight",
                many,
                delay_seconds,
                flight["run"],
                rss_before_mib=flight["rss_before_mib"],
                rss_peak_mib=flight["rss_peak_mib"],
            )
        )

    starts = startup_seconds(2 if args.smoke else 5)
    soaked = None
    if args.soak_seconds and shutil.which("hey"):
        print(f"soak: {args.soak_seconds} s at {args.soak_rate}/s, everything on", file=sys.stderr)
        with simulator(1, **EVERYTHING_ON, ELID_DELAY_SECONDS=str(SOAK_DELAY_SECONDS)) as (base, proc):
            soaked = soak(base, proc, args.soak_seconds, args.soak_rate)

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "load generator (wrk, 2 threads) on the same cores as the server; "
            "compare ratios, not absolutes",
        },
        "smoke": args.smoke,
        "workers": args.workers,
        "results": [asdict(r) for r in results],
        "startup_to_healthy_s": {"median": statistics.median(starts), "all": starts},
        "soak": soaked,
        "notes": notes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2))
    (args.out / "results.md").write_text(markdown(report))
    chart(report, args.out / "chart.png", notes)
    print((args.out / "results.md").read_text())
    return 0


def ratio(report: dict[str, Any], server: str, scenario: str = "patient-check (canned)") -> str:
    rows = {(r["server"], r["scenario"]): r for r in report["results"]}
    ours, theirs = rows.get(("simulator", scenario)), rows.get((server, scenario))
    if not ours or not theirs or not theirs["requests_per_s"]:
        return "n/a"
    return f"{ours['requests_per_s'] / theirs['requests_per_s']:.2f}x"


def observability_line(report: dict[str, Any]) -> list[str]:
    rows = {r["scenario"]: r for r in report["results"] if r["scenario"].startswith("canned, ")}
    off = rows.get("canned, metrics and journal off")
    if not off or not off["requests_per_s"]:
        return []
    shares = [
        f"{name} {rows[f'canned, {name}']['requests_per_s'] / off['requests_per_s']:.0%}"
        for name in OBSERVABILITY
        if name != "metrics and journal off" and f"canned, {name}" in rows
    ]
    runs = len(off["extra"].get("all_rps", [])) or 1
    return [
        f"Observability cost, canned patient-check throughput as a share of metrics and journal off "
        f"(median of {runs} interleaved runs each): {', '.join(shares)}.",
        "",
    ]


def targets(report: dict[str, Any]) -> list[str]:
    """Issue 17's targets against this run's figures: met or not, computed, never typed in."""
    rows = {(r["server"], r["scenario"], r["connections"]): r for r in report["results"]}

    def get(server: str, scenario: str, connections: int = 64) -> dict[str, Any] | None:
        return rows.get((server, scenario, connections))

    def rps(server: str, scenario: str) -> float:
        row = get(server, scenario)
        return float(row["requests_per_s"]) if row else 0.0

    found: list[tuple[str, str, bool]] = []
    canned, nginx, wiremock = (rps(s, "patient-check (canned)") for s in ("simulator", "nginx", "wiremock"))
    if canned and nginx:
        found.append(("canned >= 0.5x nginx's static file", f"{canned / nginx:.2f}x", canned >= 0.5 * nginx))
    if canned and wiremock:
        found.append(("canned >= 3x warm WireMock", f"{canned / wiremock:.2f}x", canned >= 3 * wiremock))
    row = get("simulator", "patient-check (canned)")
    if row:
        found.append(("canned p99 < 5 ms at 64 connections", f"{row['p99_ms']:.2f} ms", row["p99_ms"] < 5))
    ours, theirs = get("simulator", "2 s delay", 2000), get("nginx", "2 s delay", 2000)
    if ours and theirs:
        a, b = ours["p99_ms"] - 2000, theirs["p99_ms"] - 2000
        fine = a <= b + 10 and ours["min_ms"] >= 2000 and not ours["errors"]
        found.append(
            ("2 s delay at 2,000: p99 overshoot within 10 ms of nginx's", f"{a:.1f} vs {b:.1f} ms", fine)
        )
    row = get("simulator", "2 s delay, in flight", 10_000)
    if row:
        a = row["p99_ms"] - 2000
        fine = a <= 50 and row["min_ms"] >= 2000 and not row["errors"]
        found.append(("2 s delay at 10,000: p99 overshoot <= 50 ms", f"{a:.1f} ms", fine))
    for scenario in ("token (structural)", "patient-check (synthetic)"):
        other = rps("simulator", scenario)
        if canned and other:
            found.append(
                (
                    f"{scenario} within 1.5x canned",
                    f"canned / it = {canned / other:.2f}x",
                    canned <= 1.5 * other,
                )
            )
    login = rps("simulator", "nhs login /token")
    if login:
        found.append(("NHS login /token >= 1,000 req/s", f"{login:,.0f} req/s", login >= 1000))
    soaked = report.get("soak")
    if soaked:
        rss = soaked["rss_mib"]
        minute = next((m for t, m in rss if t >= 60), rss[-1][1])
        # Flat: no growth past the first minute (the journal fills in it) beyond 5 %.
        found.append(
            (
                "soak: RSS flat",
                f"{rss[0][1]:.1f} -> {minute:.1f} (1 min) -> {rss[-1][1]:.1f} MiB",
                rss[-1][1] <= minute * 1.05,
            )
        )
        overshoots = [
            w["p99_overshoot_ms"] for w in soaked.get("windows", []) if w["p99_overshoot_ms"] is not None
        ]
        if len(overshoots) >= 2:
            first, last = overshoots[0], overshoots[-1]
            found.append(
                (
                    "soak: no overshoot drift (last window's p99 within 2 ms of the first's)",
                    f"{first} -> {last} ms",
                    last <= first + 2,
                )
            )
    if not found:
        return []
    lines = ["## Targets", "", "| target | this run | met |", "|---|---|---|"]
    lines += [f"| {name} | {figure} | {'yes' if met else 'no'} |" for name, figure, met in found]
    lines += ["", "What was tried against each target not met: docs/performance.md (Targets).", ""]
    return lines


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        "# Benchmark results" + (" (SMOKE RUN: numbers mean nothing)" if report["smoke"] else ""),
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}. "
        f"{machine['note']}.",
        f"Simulator and nginx with {report['workers']} worker processes.",
        "",
        f"**Simulator / WireMock throughput (canned patient-check): {ratio(report, 'wiremock')}**; "
        f"simulator / nginx: {ratio(report, 'nginx')}.",
        "",
        *observability_line(report),
        *targets(report),
        "## Every run",
        "",
        "| server | scenario | connections | req/s | min ms | p50 ms | p90 ms | p99 ms | p99.9 ms "
        "| p99 overshoot ms | errors | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        overshoot = f"{r['p99_ms'] - 2000:.1f}" if "delay" in r["scenario"] else ""
        lines.append(
            f"| {r['server']} | {r['scenario']} | {r['connections']} | {r['requests_per_s']:,.0f} "
            f"| {r['min_ms']:.2f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['p99_9_ms']:.2f} | {overshoot} | {r['errors']} | {r['non_2xx']} |"
        )
    for r in report["results"]:
        if "signins_per_s" in r["extra"]:
            lines.append(
                f"\nNHS login sign-ins (GET /authorize then POST /token, {r['connections']} connections): "
                f"{r['extra']['signins_per_s']:,.0f} completed per second."
            )
    for r in report["results"]:
        if "rss_peak_mib" in r["extra"]:
            lines.append(
                f"\n{r['connections']:,} delayed requests in flight: "
                "resident memory of all simulator processes "
                f"{r['extra']['rss_before_mib']} MiB before, {r['extra']['rss_peak_mib']} MiB at peak."
            )
    start = report["startup_to_healthy_s"]
    lines.append(
        f"\nStart-up to first healthy answer: median {start['median']:.2f} s over {len(start['all'])} starts."
    )
    if report["soak"]:
        rss = report["soak"]["rss_mib"]
        lines.append(
            f"\nSoak: {report['soak']['seconds']:.0f} s at {report['soak']['rate']}/s, one worker, "
            f"everything on ({', '.join(f'{k}={v}' for k, v in EVERYTHING_ON.items())}): "
            f"RSS {rss[0][1]:.1f} MiB at start, "
            f"{next((m for t, m in rss if t >= 60), rss[-1][1]):.1f} MiB after a minute (the journal full), "
            f"{rss[-1][1]:.1f} MiB at end (statuses {report['soak']['statuses']})."
        )
        overshoots = [w["p99_overshoot_ms"] for w in report["soak"].get("windows", [])]
        if overshoots:
            lines.append(
                f"Every request delayed {report['soak']['delay_s'] * 1000:.0f} ms; p99 overshoot per "
                f"{report['soak']['seconds'] / len(overshoots):.0f} s window, first to last (hey's latency, "
                f"0.1 ms steps): {', '.join(f'{o} ms' for o in overshoots)}."
            )
    lines += [f"\nNote: {n}." for n in report["notes"]]
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path, notes: list[str]) -> None:
    try:
        # Optional (make bench installs it): without it mypy, checking bench/fargate.py's import of this
        # module, would fail on a missing import.
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        notes.append("matplotlib is not installed: no chart")
        return
    rows = report["results"]
    canned = [
        r
        for r in rows
        if r["scenario"] in ("patient-check (canned)", "patient-check (synthetic)", "token (structural)")
    ]
    delayed = [r for r in rows if r["scenario"] == "2 s delay"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.barh(
        [f"{r['server']}\n{r['scenario']}" for r in canned],
        [r["requests_per_s"] for r in canned],
        color="#4477aa",
    )
    left.set_xlabel("requests/s, 64 connections (higher is better)")
    right.bar(
        [r["server"] for r in delayed], [max(0.0, r["p99_ms"] - 2000) for r in delayed], color="#cc6677"
    )
    right.set_ylabel("p99 overshoot of a 2 s delay, ms (lower is better)")
    right.set_title(f"{delayed[0]['connections'] if delayed else 0} connections")
    fig.suptitle(
        f"api-simulator vs nginx vs WireMock, same machine, same run ({report['machine']['cpus']} CPUs)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())
