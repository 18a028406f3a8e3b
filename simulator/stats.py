"""Delay fidelity in numbers: per route, the configured policy beside what was delivered, over windows.

For ``/_simulator/plugins``, ``/_simulator/stats`` and the dashboard: from every worker's snapshot (with the
copies each keeps every 10 s), the requests, status mix, delivered p50/p90/p99 and overshoot p50/p99 of the
last 10 seconds, the last minute and since start, summed over the workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from simulator.control import Control
from simulator.delays import describe
from simulator.host import PluginHost
from simulator.metrics import OVERSHOOT_BUCKETS, bucket_quantile, difference, merge_routes, quantiles

WINDOWS: Final = {"recent": 10.0, "minute": 60.0}


def windowed(snapshot: Mapping[str, Any], seconds: float) -> tuple[dict[str, Any], float]:
    """A worker's routes over its last ``seconds`` (the counts now minus the copy from then), and the
    window's actual length (shorter for a worker younger than that)."""
    now = snapshot["time"]
    history = snapshot.get("history") or []
    start_time, start = history[0] if history else (snapshot["started"], {})
    for when, routes in history:
        if when <= now - seconds:
            start_time, start = when, routes
    return difference(snapshot["routes"], start), max(now - start_time, 1e-9)


def summary(routes: Mapping[str, Any], seconds: float | None) -> dict[str, dict[str, Any]]:
    """Per route: requests (and rate over ``seconds``), statuses, delivered and overshoot percentiles."""
    found: dict[str, dict[str, Any]] = {}
    for name, entry in routes.items():
        delivered: dict[int, int] = {}
        statuses: dict[str, int] = {}
        overshoot = [0] * (len(OVERSHOOT_BUCKETS) + 1)
        for one in entry["methods"].values():
            for index, n in one["fine"].items():
                delivered[int(index)] = delivered.get(int(index), 0) + n
            for status, n in one["statuses"].items():
                if n:
                    statuses[str(status)] = statuses.get(str(status), 0) + n
            overshoot = [a + b for a, b in zip(overshoot, one["overshoot"][0], strict=True)]
        requests = sum(statuses.values())
        row: dict[str, Any] = {
            "requests": requests,
            "statuses": statuses,
            "delivered": quantiles(delivered),
            "overshoot": {
                "p50": bucket_quantile(OVERSHOOT_BUCKETS, overshoot, 0.5),
                "p99": bucket_quantile(OVERSHOOT_BUCKETS, overshoot, 0.99),
            },
        }
        if seconds is not None:
            row["rate"] = requests / seconds
        found[name] = row
    return found


def route_stats(
    host: PluginHost, snapshots: Iterable[Mapping[str, Any]], control: Control | None = None
) -> dict[str, Any]:
    """Everything the dashboard shows, from every worker's snapshot (with history); with ``control``, the
    delays and faults in force now (changed at runtime) rather than the start-up ones."""
    snapshots = list(snapshots)
    total: dict[str, Any] = {}
    windows: dict[str, tuple[dict[str, Any], float]] = {name: ({}, 0.0) for name in WINDOWS}
    for snapshot in snapshots:
        merge_routes(total, snapshot["routes"])
        for name, seconds in WINDOWS.items():
            delta, length = windowed(snapshot, seconds)
            merge_routes(windows[name][0], delta)
            windows[name] = (windows[name][0], max(windows[name][1], length))
    rows = {name: summary(routes, length or None) for name, (routes, length) in windows.items()}
    overall = summary(total, None)
    report = []
    for plugin in host.plugins.values():
        in_force = control.in_force(plugin.name) if control is not None else {}
        armed = control.armed_by_route(plugin.name) if control is not None else {}
        for route in plugin.routes:
            name = route.name
            report.append(
                {
                    "plugin": plugin.name,
                    "route": name,
                    "path": route.path,
                    "methods": list(route.methods),
                    "delay": in_force.get(name) or describe(plugin.delay if route.delayed else None),
                    "faults": {
                        "armed": armed.get(name, {}),
                        "fired": total.get(name, {}).get("faults", {}),
                    },
                    "in_flight": total.get(name, {}).get("in_flight", 0),
                    "capacity": {
                        "queued": total.get(name, {}).get("queued", 0),
                        "rejected": total.get(name, {}).get("rejected", 0),
                    },
                    "total": overall.get(name, _EMPTY),
                    **{window: rows[window].get(name, _EMPTY | {"rate": 0.0}) for window in WINDOWS},
                }
            )
    return {
        "workers": len(snapshots),
        "time": max((s["time"] for s in snapshots), default=None),
        "started": min((s["started"] for s in snapshots), default=None),
        "restarts": max((s["restarts"] for s in snapshots), default=0),
        "connections": sum(s["connections"] or 0 for s in snapshots)
        if any(s["connections"] is not None for s in snapshots)
        else None,
        "in_flight": sum(entry["in_flight"] for entry in total.values()),
        "routes": report,
    }


_EMPTY: Final[dict[str, Any]] = {
    "requests": 0,
    "statuses": {},
    "delivered": {"p50": None, "p90": None, "p99": None},
    "overshoot": {"p50": None, "p99": None},
}
