#!/usr/bin/env python3
"""Fargate-sized figures: the simulator image and an nginx reference under a task's CPU and memory limits.

    make bench-fargate                     # every size (~15 minutes): bench/results/fargate.{md,json}
    .venv/bin/python bench/fargate.py --quick   # ~1 minute, one size: the harness works; numbers mean nothing

For each size (0.25 vCPU / 512 MiB, the Terraform default task; 1 vCPU / 2 GiB; 2 vCPU / 4 GiB) and each
worker count, the simulator image (every default: all plugins, metrics and journal on) and nginx (Debian's,
with its echo module, built from the simulator image's base by bench/nginx/Dockerfile, serving the same
patient-check body as a static file) run one after the other under `docker run --cpus --memory`, and wrk on
the host measures:

- canned patient-check throughput and p99 at 64 connections;
- the p99 overshoot of a 2 s delay at 1,000 connections (ELID_DELAY_SECONDS=2; nginx: echo_sleep 2);
- a bounded ramp of connections, each waiting on a 2 s delay, up to the first step with socket errors,
  timeouts, non-2xx answers, an OOM kill or a stopped container: the largest clean step is "in flight";
- memory as `docker stats` reports it (usage less inactive page cache), at idle and the peak of the above.

The servers listen on 127.0.0.1 in the host's network namespace (--network host: no docker-proxy, which
would run outside the CPU quota, as Fargate's awsvpc has none), or with --network publish on a port
published on 127.0.0.1; every container is removed at the end, on an error or Ctrl-C too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from run import BENCH, PATH, PATIENT, ROOT, free_port, wait_http, wrk

SIMULATOR_IMAGE = "fake-api:latest"
NGINX_IMAGE = "fake-api-bench-nginx:latest"
LABEL = "api-simulator.bench=fargate"
DELAY = 2.0
# What the simulator image is built from (docker build's context): a change here makes the image stale.
IMAGE_SOURCES = ("Dockerfile", "requirements.lock", "pyproject.toml", "README.md", "simulator", "plugins")


@dataclass(frozen=True)
class Size:
    name: str
    cpus: float
    memory: str | None
    workers: tuple[int, ...]


# Fargate's CPU/memory pairs; memory beside 2 vCPU is Fargate's smallest (4 GiB) so that only CPU binds.
SIZES = (
    Size("0.25 vCPU / 512 MiB", 0.25, "512m", (1,)),
    Size("1 vCPU / 2 GiB", 1.0, "2g", (1, 2)),
    Size("2 vCPU / 4 GiB", 2.0, "4g", (1, 2)),
)


@dataclass
class Row:
    size: str
    server: str
    workers: int
    requests_per_s: float = 0.0
    p99_ms: float = 0.0
    canned_errors: int = 0
    overshoot_p99_ms: float | None = None
    delay_errors: int = 0
    max_clean_in_flight: int = 0
    first_failed_step: int | None = None
    failure: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    rss_idle_mib: float = 0.0
    rss_peak_mib: float = 0.0
    notes: list[str] = field(default_factory=list)


class Docker:
    """The containers this run started, by id, so that every one is removed however the run ends."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def run(self, image: str, size: Size, env: dict[str, str], network: str, port: int) -> str:
        cmd = ["docker", "run", "-d", "--label", LABEL, f"--cpus={size.cpus}"]
        if size.memory:
            # Fargate has no swap: without --memory-swap docker would let the container swap as much again.
            cmd += [f"--memory={size.memory}", f"--memory-swap={size.memory}"]
        if network == "host":
            cmd += ["--network", "host"]
        else:
            cmd += ["-p", f"127.0.0.1:{port}:{container_port(image)}"]
        for name, value in env.items():
            cmd += ["-e", f"{name}={value}"]
        out = subprocess.run([*cmd, image], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"docker run {image}: {out.stderr.strip()}")
        container = out.stdout.strip()
        self.started.append(container)
        return container

    def remove(self, container: str) -> None:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
        if container in self.started:
            self.started.remove(container)

    def remove_all(self) -> None:
        for container in list(self.started):
            self.remove(container)

    @staticmethod
    def state(container: str) -> dict[str, Any]:
        out = subprocess.run(
            ["docker", "inspect", "--format", "{{json .State}}", container],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return dict(json.loads(out.stdout)) if out.returncode == 0 else {}

    @staticmethod
    def memory_mib(container: str) -> float | None:
        out = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return parse_mib(out.stdout.split("/")[0]) if out.returncode == 0 else None


def container_port(image: str) -> int:
    return 8080 if image == NGINX_IMAGE else 9123


UNITS = {"b": 1 / 2**20, "kib": 1 / 1024, "mib": 1.0, "gib": 1024.0, "kb": 1e3 / 2**20, "mb": 1e6 / 2**20}
UNITS["gb"] = 1e9 / 2**20


def parse_mib(text: str) -> float | None:
    """`docker stats`'s "45.68MiB" (or B, KiB, GiB, kB, MB, GB) in MiB."""
    m = re.match(r"\s*([\d.]+)\s*([A-Za-z]+)", text)
    return float(m.group(1)) * UNITS[m.group(2).lower()] if m and m.group(2).lower() in UNITS else None


class MemorySampler:
    """`docker stats --no-stream` over and over in a thread (each call takes a second or two): the peak."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            if (mib := Docker.memory_mib(self.container)) is not None:
                self.peak = max(self.peak, mib)
            self._stop.wait(0.5)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=35)


def python_image() -> str:
    """The main Dockerfile's `ARG PYTHON_IMAGE` default: nginx is built from the same base."""
    m = re.search(r"^ARG PYTHON_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    if not m:
        raise RuntimeError("Dockerfile: no ARG PYTHON_IMAGE default")
    return m.group(1)


def image_created(image: str) -> float | None:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Created}}", image],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        return None
    # "2026-12-02T13:06:00.388536611Z": docker gives nanoseconds, Python parses at most microseconds.
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", out.stdout.strip()).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def newest_source() -> float:
    newest = 0.0
    for name in IMAGE_SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if "__pycache__" not in p.parts]
        newest = max([newest, *(p.stat().st_mtime for p in files if p.is_file())])
    return newest


def ensure_simulator_image(image: str, rebuild: bool) -> str:
    created = image_created(image)
    if rebuild or created is None or created < newest_source():
        why = "asked" if rebuild else "missing" if created is None else "older than its sources"
        print(f"building {image} ({why})", file=sys.stderr)
        subprocess.run(["docker", "build", "-q", "-t", image, str(ROOT)], check=True, timeout=1800)
        return f"built ({why})"
    return "reused"


def build_nginx_image(body: bytes) -> None:
    """From a temporary context: bench/nginx/ plus the body; unchanged inputs hit docker's layer cache."""
    with tempfile.TemporaryDirectory() as context:
        for name in ("Dockerfile", "nginx.conf", "entrypoint.sh"):
            shutil.copy(BENCH / "nginx" / name, Path(context) / name)
        (Path(context) / "patient.json").write_bytes(body)
        cmd = ["docker", "build", "-q", "--build-arg", f"PYTHON_IMAGE={python_image()}"]
        subprocess.run([*cmd, "-t", NGINX_IMAGE, context], check=True, capture_output=True, timeout=900)


def server_env(server: str, workers: int, delay: float, network: str, port: int) -> dict[str, str]:
    if server == "nginx":
        listen = f"127.0.0.1:{port}" if network == "host" else str(container_port(NGINX_IMAGE))
        return {"NGINX_WORKERS": str(workers), "NGINX_DELAY_SECONDS": f"{delay:g}", "NGINX_LISTEN": listen}
    # Every default but the worker count (and the address, in the host's network namespace).
    env = {"SIMULATOR_WORKERS": str(workers)}
    if delay:
        env["ELID_DELAY_SECONDS"] = f"{delay:g}"
    if network == "host":
        env |= {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port)}
    return env


@contextmanager
def container(
    docker: Docker, server: str, size: Size, workers: int, delay: float, network: str
) -> Iterator[tuple[str, str]]:
    image = NGINX_IMAGE if server == "nginx" else SIMULATOR_IMAGE
    port = free_port()
    cid = docker.run(image, size, server_env(server, workers, delay, network, port), network, port)
    try:
        base = f"http://127.0.0.1:{port}"
        # The simulator's /health is never delayed; nginx has no such route, so it waits out its delay once.
        wait_http(base + ("/health" if server == "simulator" else PATH), timeout=90)
        time.sleep(1.0)  # past start-up's own allocations, before "idle" is read
        yield cid, base
    finally:
        docker.remove(cid)


def clean(run: dict[str, Any], state: dict[str, Any]) -> str:
    """Why a step is not clean ("" if it is)."""
    if state.get("OOMKilled"):
        return "OOM-killed"
    if not state.get("Running", False):
        return f"container stopped (exit {state.get('ExitCode')})"
    if "rps" not in run:
        return "wrk failed: " + str(run["raw"])[-200:].strip()
    if run["errors"]:
        return f"{run['errors']} socket errors/timeouts"
    if run["non_2xx"]:
        return f"{run['non_2xx']} non-2xx answers"
    return ""


def measure(
    docker: Docker, server: str, size: Size, workers: int, args: argparse.Namespace, steps: list[int]
) -> Row:
    row = Row(size.name, server, workers)
    print(f"{size.name}: {server}, {workers} worker(s): canned", file=sys.stderr)
    with container(docker, server, size, workers, 0, args.network) as (cid, base):
        row.rss_idle_mib = Docker.memory_mib(cid) or 0.0
        with MemorySampler(cid) as sampler:
            run = wrk(base + PATH, 64, args.seconds)
        row.requests_per_s, row.p99_ms = run.get("rps", 0.0), run.get("p99", 0.0)
        row.canned_errors = run["errors"] + run["non_2xx"]
        row.rss_peak_mib = sampler.peak
    print(f"{size.name}: {server}, {workers} worker(s): 2 s delay, then the ramp", file=sys.stderr)
    with container(docker, server, size, workers, DELAY, args.network) as (cid, base):
        row.rss_idle_mib = min(row.rss_idle_mib, Docker.memory_mib(cid) or row.rss_idle_mib)
        with MemorySampler(cid) as sampler:
            run = wrk(base + PATH, 1000, args.delay_seconds, timeout=args.timeout)
            if "p99" in run:
                row.overshoot_p99_ms = round(run["p99"] - DELAY * 1000, 1)
            row.delay_errors = run["errors"] + run["non_2xx"]
            for connections in steps:
                run = wrk(base + PATH, connections, args.step_seconds, timeout=args.timeout)
                why = clean(run, Docker.state(cid))
                row.steps.append(
                    {
                        "connections": connections,
                        "requests_per_s": run.get("rps", 0.0),
                        "p99_ms": run.get("p99", 0.0),
                        "max_ms": run.get("max", 0.0),
                        "errors": run["errors"],
                        "non_2xx": run["non_2xx"],
                        "failure": why,
                    }
                )
                if why:
                    row.first_failed_step, row.failure = connections, why
                    break
                row.max_clean_in_flight = connections
        row.rss_peak_mib = max(row.rss_peak_mib, sampler.peak)
        if row.canned_errors or row.delay_errors:
            row.notes.append(
                f"errors or non-2xx: {row.canned_errors} in the canned run, "
                f"{row.delay_errors} in the 2 s delay run"
            )
        if server == "simulator" and Docker.state(cid).get("Running"):
            stats = json.loads(urllib.request.urlopen(base + "/_simulator/stats", timeout=30).read())
            if stats.get("restarts"):
                row.notes.append(f"{stats['restarts']} worker restarts (a worker died: the OOM killer?)")
    return row


def nofile(pid: int) -> int | None:
    try:
        limits = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return None
    m = re.search(r"^Max open files\s+(\d+)\s+(\d+)", limits, re.M)
    return int(m.group(1)) if m else None


def limits(network: str) -> dict[str, Any]:
    """The file limits that cap the ramp before either server does, whichever binds first."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    found: dict[str, Any] = {"wrk_nofile": soft}
    out = subprocess.run(["pgrep", "-xo", "dockerd"], capture_output=True, text=True, timeout=10)
    dockerd = nofile(int(out.stdout)) if out.stdout.strip() else None
    # Containers and docker-proxy inherit the daemon's limit. docker-proxy holds two descriptors per
    # connection (the client's and its own to the container): published ports cap in-flight at half of it.
    found["dockerd_nofile"] = dockerd
    if network == "publish" and dockerd:
        found["docker_proxy_max_connections"] = dockerd // 2 - 32
    return found


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M)
    docker = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, timeout=30
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model.group(1) if model else "unknown",
        "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "platform": platform.platform(),
        "docker": docker.stdout.strip(),
        "note": "wrk (2 threads) on the host's cores, beside the container: a container at 2 CPUs shares "
        "a 2-core machine with its load generator; compare ratios, not absolutes",
    }


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if ours is not None and theirs else "n/a"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Fargate-sized benchmark" + (" (QUICK RUN: numbers mean nothing)" if report["quick"] else ""),
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, {m['platform']}, "
        f"Docker {m['docker']}; load average {m['load_average_at_start']} at the start, "
        f"{m['load_average_at_end']} at the end. {m['note']}.",
        "",
        f"Reproduce: `{report['command']}`",
        "",
        f"Simulator image `{report['images']['simulator']}` ({report['images']['simulator_build']}), "
        f"every default but `SIMULATOR_WORKERS`; nginx image `{report['images']['nginx']}` "
        f"(bench/nginx/Dockerfile, from `{report['images']['base']}`), `worker_processes` = workers. "
        f"Network: {report['network']}. "
        f"Canned: {report['seconds']:g} s at 64 connections. 2 s delay: {report['delay_seconds']:g} s at "
        f"1,000 connections, overshoot = p99 - 2,000 ms. In flight: steps of {report['step_seconds']:g} s "
        f"at {', '.join(f'{s:,}' for s in report['steps'])} connections, each waiting on the 2 s delay, "
        f"up to the first with errors, timeouts (wrk --timeout {report['timeout']}), non-2xx or an OOM kill. "
        "Memory: `docker stats` (usage less inactive page cache), idle after start-up and at the peak.",
    ]
    for size in report["sizes"]:
        rows = [r for r in report["rows"] if r["size"] == size["name"]]
        memory = size["memory"] or "no limit"
        lines += [
            "",
            f"## {size['name']} (`--cpus={size['cpus']:g} --memory={memory}`)",
            "",
            "| server | workers | req/s | p99 ms | 2 s overshoot p99 ms, 1,000 conns | max clean in flight "
            "| first failure | memory idle / peak MiB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            overshoot = "n/a" if r["overshoot_p99_ms"] is None else f"{r['overshoot_p99_ms']:.1f}"
            failure = f"{r['first_failed_step']:,}: {r['failure']}" if r["first_failed_step"] else "none"
            lines.append(
                f"| {r['server']} | {r['workers']} | {r['requests_per_s']:,.0f} | {r['p99_ms']:.2f} "
                f"| {overshoot} | {r['max_clean_in_flight']:,} | {failure} "
                f"| {r['rss_idle_mib']:.1f} / {r['rss_peak_mib']:.1f} |"
            )
        for workers in sorted({r["workers"] for r in rows}):
            pair = {r["server"]: r for r in rows if r["workers"] == workers}
            if {"simulator", "nginx"} <= pair.keys():
                ours, theirs = pair["simulator"], pair["nginx"]
                lines.append(
                    f"| simulator / nginx | {workers} "
                    f"| {ratio(ours['requests_per_s'], theirs['requests_per_s'])} "
                    f"| {ratio(ours['p99_ms'], theirs['p99_ms'])} "
                    f"| {ratio(ours['overshoot_p99_ms'], theirs['overshoot_p99_ms'])} "
                    f"| {ratio(ours['max_clean_in_flight'], theirs['max_clean_in_flight'])} | "
                    f"| {ratio(ours['rss_peak_mib'], theirs['rss_peak_mib'])} (peak) |"
                )
        for r in rows:
            steps = "; ".join(
                f"{s['connections']:,}: {s['requests_per_s']:,.0f} req/s, p99 {s['p99_ms']:,.1f} ms"
                + (f" ({s['failure']})" if s["failure"] else "")
                for s in r["steps"]
            )
            lines.append(f"\n{r['server']}, {r['workers']} worker(s), in-flight steps: {steps or 'none'}.")
            lines += [f"\n{r['server']}, {r['workers']} worker(s): {n}." for n in r["notes"]]
    lines += ["", "Limits: " + ", ".join(f"{k} {v}" for k, v in report["limits"].items()) + "."]
    lines += [f"\nNote: {n}." for n in report["notes"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one size, 2-3 s runs: the harness, not figures")
    parser.add_argument("--sizes", default="0.25,1,2", help="vCPU of the sizes to run (0.25,1,2)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each canned throughput run (10)")
    parser.add_argument("--delay-seconds", type=float, default=20.0, help="the 1,000-connection run (20)")
    parser.add_argument("--step-seconds", type=float, default=10.0, help="each in-flight step (10)")
    parser.add_argument(
        "--steps", default="1000,2000,5000,10000", help="in-flight connection steps (1000,2000,5000,10000)"
    )
    parser.add_argument("--timeout", default="10s", help="wrk's per-request timeout (10s)")
    parser.add_argument(
        "--network",
        choices=("host", "publish"),
        # The default: docker-proxy, which carries published ports, runs on the host's CPUs outside the
        # --cpus quota and holds two descriptors a connection; Fargate's awsvpc has no such hop.
        default="host",
        help="host (default): --network host, servers on 127.0.0.1 (no proxy, as on Fargate's awsvpc); "
        "publish: -p 127.0.0.1:port (through docker-proxy, on the host's CPUs, outside the quota)",
    )
    parser.add_argument("--servers", default="simulator,nginx", help="which to run (simulator,nginx)")
    parser.add_argument("--rebuild", action="store_true", help=f"rebuild {SIMULATOR_IMAGE} even if current")
    parser.add_argument("--out", type=Path, default=None, help="bench/results (--quick: bench/results/smoke)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.seconds, args.delay_seconds, args.step_seconds = "0.25", 2.0, 3.0, 3.0
        args.steps = "500,1000"
    out: Path = args.out or BENCH / "results" / ("smoke" if args.quick else "")
    for tool in ("wrk", "docker"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed", file=sys.stderr)
            return 2
    # wrk holds one descriptor per connection: the soft limit up to the hard one, as run.py does.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    sizes = [s for s in SIZES if f"{s.cpus:g}" in args.sizes.split(",")]
    servers = [s for s in ("simulator", "nginx") if s in args.servers.split(",")]
    found = limits(args.network)
    notes: list[str] = []
    steps = []
    cap = min(v for v in (found["wrk_nofile"] - 64, found.get("docker_proxy_max_connections")) if v)
    for step in (int(s) for s in args.steps.split(",")):
        if step > cap:
            notes.append(f"step {step:,} skipped: above this machine's descriptor limits (limits below)")
        else:
            steps.append(step)
    if "simulator" in servers:
        notes.append(
            "the simulator accepts SIMULATOR_MAX_CONNECTIONS (10,000 by default) connections per worker, "
            "the image's default kept: one worker past it answers 503"
        )
    if args.network == "publish":
        notes.append(
            "ports published through docker-proxy, which runs on the host outside the container's CPU "
            "limit and adds a hop; Fargate (awsvpc) has neither: --network host measures without it"
        )

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    docker = Docker()

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through every `finally`, which removes the containers

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    rows: list[Row] = []
    try:
        build = ensure_simulator_image(SIMULATOR_IMAGE, args.rebuild)
        if "nginx" in servers:
            # The body nginx serves is the simulator's own answer, byte for byte, as in run.py.
            with container(docker, "simulator", SIZES[-1], 1, 0, args.network) as (_cid, base):
                body = urllib.request.urlopen(base + PATH, timeout=30).read()
            print(f"building {NGINX_IMAGE}", file=sys.stderr)
            build_nginx_image(body)
        for size in sizes:
            for workers in size.workers:
                rows += [measure(docker, server, size, workers, args, steps) for server in servers]
    finally:
        docker.remove_all()

    report = {
        "machine": machine()
        | {
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "command": shlex.join([".venv/bin/python", "bench/fargate.py", *sys.argv[1:]]),
        "quick": args.quick,
        "network": args.network,
        "images": {
            "simulator": SIMULATOR_IMAGE,
            "simulator_build": build,
            "nginx": NGINX_IMAGE,
            "base": python_image(),
        },
        "seconds": args.seconds,
        "delay_seconds": args.delay_seconds,
        "step_seconds": args.step_seconds,
        "steps": steps,
        "timeout": args.timeout,
        "patient": PATIENT,
        "sizes": [asdict(s) for s in sizes],
        "limits": found,
        "rows": [asdict(r) for r in rows],
        "notes": notes,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "fargate.json").write_text(json.dumps(report, indent=2))
    (out / "fargate.md").write_text(markdown(report))
    print((out / "fargate.md").read_text())
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; its containers are removed, no results written", file=sys.stderr)
        raise SystemExit(130) from None
