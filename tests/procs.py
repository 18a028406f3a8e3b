"""A real server's processes, from ``/proc``: its workers and what they weigh."""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def workers_of(pid: int) -> list[int]:
    """The worker processes (multiprocessing may also start a resource tracker)."""
    return [c for c in children(pid) if b"spawn_main" in cmdline(c)]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # exited (and reaped) meanwhile
        return b""


def rss_bytes(pid: int) -> int:
    """The resident set size of a process (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")
