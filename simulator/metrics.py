"""What the simulator delivered, per route: counts, delivered latency, asked delay, overshoot, in flight.

Recording is on the hot path, so it is plain Python arithmetic on per-route objects (no locks, no label
lookups: each route's :class:`RouteStats` is found once at start-up): a counter by method and status, two
Prometheus histograms (asked, overshoot) and a fine histogram of delivered latency, which gives exact-enough
percentiles and the delivered Prometheus buckets.
Everything else (merging workers, Prometheus text, percentiles, windows) happens when someone asks.

Each worker records its own requests; a snapshot is JSON-able and snapshots add up, so the worker that
answers a scrape sums every worker's (``simulator/peers.py``).
"""

from __future__ import annotations

import math
import os
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

# Prometheus buckets. Delivered latency and asked delay: from half a millisecond to a minute.
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0,
    7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
# Overshoot (delivered minus asked): fine where fidelity is judged, so histogram_quantile() reads a p99 of a
# few milliseconds to within a quarter of a millisecond: 0.5 ms steps to 20 ms, 1 ms to 50, 2.5 ms to 100.
OVERSHOOT_BUCKETS: Final = (
    *(i / 2000 for i in range(1, 41)),
    *(i / 1000 for i in range(21, 51)),
    *(i / 400 for i in range(21, 41)),
    *(i / 100 for i in range(11, 26)),
    *(i / 20 for i in range(6, 21)),
    2.5,
    5.0,
    10.0,
)
# Fine histograms (for percentiles in /_simulator/plugins and the dashboard): logarithmic buckets 0.5 %
# wide from 0.1 ms, so a percentile read from one is within 0.5 % of the true value (10 ms at 2 s).
FINE_FLOOR: Final = 1e-4
FINE_SCALE: Final = 1 / math.log(1.005)
# How often a worker keeps a copy of its counts (for "the last minute"), and for how long.
SNAPSHOT_SECONDS: Final = 10.0
# Enough for the longest window of simulator/stats.py (60 s) and the slot in progress: every copy travels
# between workers on each /stats call (the dashboard makes one a second), so no more than that is kept.
HISTORY_SLOTS: Final = 8


def fine_index(seconds: float) -> int:
    """The fine bucket of a duration: 0 up to 0.1 ms, then one per 0.5 % (``Observer.record`` inlines it)."""
    return int(math.log(seconds / FINE_FLOOR) * FINE_SCALE) + 1 if seconds > FINE_FLOOR else 0


def fine_value(index: int) -> float:
    """The upper bound of a fine bucket."""
    return FINE_FLOOR * math.exp(index / FINE_SCALE) if index else FINE_FLOOR


class MethodSeries:
    """The counts of one route and method: by status, the delay asked for, the overshoot, and delivered
    latency in fine buckets (the Prometheus delivered buckets are read from those: see :func:`delivered`).

    Filled by :meth:`simulator.observer.Observer.record`, for every request: the recording is written
    there, in one function, for speed.
    """

    __slots__ = ("asked", "asked_sum", "delivered_sum", "fine", "overshoot", "overshoot_sum", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        # Prometheus buckets, the last one +Inf. A request asked for no delay is counted in asked[0]
        # when a snapshot is made (the fine buckets count it), not on the hot path.
        self.asked = [0] * (len(LATENCY_BUCKETS) + 1)
        self.overshoot = [0] * (len(OVERSHOOT_BUCKETS) + 1)
        self.asked_sum = 0.0
        self.overshoot_sum = 0.0
        self.delivered_sum = 0.0
        # Delivered latency, fine bucket index -> count (see fine_index).
        self.fine: dict[int, int] = {}

    def delivered_buckets(self) -> list[int]:
        """Delivered latency in Prometheus buckets, from the fine ones (each counted by its upper bound: a
        value less than 0.5 % below a bound may be counted in the bucket above it)."""
        counts = [0] * (len(LATENCY_BUCKETS) + 1)
        for index, count in self.fine.items():
            counts[bisect_left(LATENCY_BUCKETS, fine_value(index))] += count
        return counts

    def asked_buckets(self) -> list[int]:
        counts = list(self.asked)
        # Every request in the histograms has a fine bucket (those a fault fired on have none).
        counts[0] += sum(self.fine.values()) - sum(counts)
        return counts


class RouteStats:
    """Everything recorded about one route, by method; ``in_flight`` is kept by the dispatcher."""

    __slots__ = ("faults", "in_flight", "methods", "plugin", "queued", "rejected", "route")

    def __init__(self, plugin: str, route: str) -> None:
        self.plugin = plugin
        self.route = route
        self.in_flight = 0
        self.methods: dict[str, MethodSeries] = {}
        self.faults: dict[str, int] = {}  # fault kind -> requests it fired on
        self.queued = 0  # requests waiting for the capacity model
        self.rejected = 0  # requests the capacity model turned away

    def series(self, method: str) -> MethodSeries:
        found = self.methods.get(method)
        if found is None:
            found = self.methods[method] = MethodSeries()
        return found


# -- what plugins add: their own counters, gauges and the sizes of their stores ----------------------------


class Counter:
    """A plugin's counter (``simulator_plugin_events_total{plugin, event}``)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


@dataclass(frozen=True, slots=True)
class _Store:
    plugin: str
    name: str
    store: Any


class PluginMetrics:
    """A plugin's part of the metrics, as its hooks find it in ``context.metrics``.

    Every value is per worker and summed over the workers of a simulator, like the core's own metrics.
    """

    def __init__(self, plugin: str, registry: Metrics) -> None:
        self._plugin = plugin
        self._registry = registry

    def counter(self, event: str) -> Counter:
        """A counter of ``event`` (``simulator_plugin_events_total{plugin, event}``): call ``.inc()``."""
        return self._registry.counters.setdefault((self._plugin, event), Counter())

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """A value read at each scrape (``simulator_plugin_gauge{plugin, name}``)."""
        self._registry.gauges[(self._plugin, name)] = read

    def store(self, name: str, store: Any) -> None:
        """A bounded store, reported as ``simulator_store_entries`` and ``simulator_store_bytes``
        ``{plugin, store}``; it needs ``len()`` and a ``bytes`` attribute (``ExpiringSet`` has both).
        Checked here, at start-up, so that a scrape never meets a store it cannot read."""
        try:
            len(store), int(store.bytes)
        except Exception as exc:
            raise TypeError(
                f"metrics store {name!r} of plugin {self._plugin!r}: {type(store).__name__} needs len() "
                f"and an int 'bytes' attribute ({exc})"
            ) from None
        self._registry.stores.append(_Store(self._plugin, name, store))


# -- the per-process registry -------------------------------------------------------------------------------


class Metrics:
    """One worker's recordings, and the copies of them a window needs."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.routes: dict[str, RouteStats] = {}
        self.counters: dict[tuple[str, str], Counter] = {}
        self.gauges: dict[tuple[str, str], Callable[[], float]] = {}
        self.stores: list[_Store] = []
        self.unrouted = 0
        self.connections: Callable[[], int] | None = None
        self.restarts = 0
        self.started = clock()
        self._clock = clock
        self._history: deque[tuple[float, dict[str, Any]]] = deque(maxlen=HISTORY_SLOTS)

    def route(self, plugin: str, route: str) -> RouteStats:
        """The stats object of a route (made once, at start-up)."""
        stats = self.routes.get(route)
        if stats is None:
            stats = self.routes[route] = RouteStats(plugin, route)
        return stats

    def for_plugin(self, plugin: str) -> PluginMetrics:
        return PluginMetrics(plugin, self)

    def keep_history(self) -> None:
        """Keep a copy of the counts for windows; called every SNAPSHOT_SECONDS."""
        self._history.append((self._clock(), self._routes_snapshot(fine_only=True)))

    def snapshot(self, *, history: bool = False) -> dict[str, Any]:
        """Everything, JSON-able; ``history`` adds the copies kept for windows (oldest first)."""
        snapshot: dict[str, Any] = {
            "pid": os.getpid(),
            "time": self._clock(),
            "started": self.started,
            "restarts": self.restarts,
            "unrouted": self.unrouted,
            "connections": self.connections() if self.connections is not None else None,
            "routes": self._routes_snapshot(fine_only=False),
            "counters": [[p, e, c.value] for (p, e), c in self.counters.items()],
            "gauges": [[p, n, _read(read)] for (p, n), read in self.gauges.items()],
            "stores": [[s.plugin, s.name, len(s.store), int(s.store.bytes)] for s in self.stores],
        }
        if history:
            snapshot["history"] = [[when, routes] for when, routes in self._history]
        return snapshot

    def _routes_snapshot(self, *, fine_only: bool) -> dict[str, Any]:
        """``fine_only``: what windows need (statuses, overshoot buckets, fine buckets), for the history."""
        routes: dict[str, Any] = {}
        for name, stats in self.routes.items():
            methods: dict[str, Any] = {}
            for method, series in stats.methods.items():
                one: dict[str, Any] = {
                    "statuses": dict(series.statuses),
                    "overshoot": [list(series.overshoot), series.overshoot_sum],
                    "fine": dict(series.fine),
                }
                if not fine_only:
                    one["delivered"] = [series.delivered_buckets(), series.delivered_sum]
                    one["asked"] = [series.asked_buckets(), series.asked_sum]
                methods[method] = one
            routes[name] = {
                "plugin": stats.plugin,
                "in_flight": stats.in_flight,
                "methods": methods,
                "faults": dict(stats.faults),
                "queued": stats.queued,
                "rejected": stats.rejected,
            }
        return routes


def _read(read: Callable[[], float]) -> float:
    try:
        return float(read())
    except Exception:  # a plugin's gauge must not break a scrape
        return math.nan


# -- merging and reading snapshots ---------------------------------------------------------------------------


def merge(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of several workers' snapshots (restarts: the largest count any worker saw)."""
    merged: dict[str, Any] = {
        "workers": 0,
        "restarts": 0,
        "unrouted": 0,
        "connections": None,
        "started": None,
        "routes": {},
        "counters": {},
        "gauges": {},
        "stores": {},
    }
    for snapshot in snapshots:
        merged["workers"] += 1
        merged["restarts"] = max(merged["restarts"], snapshot["restarts"])
        merged["unrouted"] += snapshot["unrouted"]
        if snapshot["connections"] is not None:
            merged["connections"] = (merged["connections"] or 0) + snapshot["connections"]
        started = snapshot["started"]
        merged["started"] = started if merged["started"] is None else min(merged["started"], started)
        merge_routes(merged["routes"], snapshot["routes"])
        for plugin, event, value in snapshot["counters"]:
            merged["counters"][(plugin, event)] = merged["counters"].get((plugin, event), 0) + value
        for plugin, name, value in snapshot["gauges"]:
            merged["gauges"][(plugin, name)] = merged["gauges"].get((plugin, name), 0.0) + value
        for plugin, name, entries, size in snapshot["stores"]:
            old = merged["stores"].get((plugin, name), (0, 0))
            merged["stores"][(plugin, name)] = (old[0] + entries, old[1] + size)
    return merged


def merge_routes(into: dict[str, Any], routes: Mapping[str, Any]) -> None:
    """Add one worker's routes (a snapshot's, or a window's) into ``into``."""
    for name, entry in routes.items():
        target = into.setdefault(
            name,
            {
                "plugin": entry["plugin"],
                "in_flight": 0,
                "methods": {},
                "faults": {},
                "queued": 0,
                "rejected": 0,
            },
        )
        target["in_flight"] += entry["in_flight"]
        target["queued"] += entry.get("queued", 0)
        target["rejected"] += entry.get("rejected", 0)
        for kind, count in entry.get("faults", {}).items():
            target["faults"][kind] = target["faults"].get(kind, 0) + count
        for method, one in entry["methods"].items():
            mine = target["methods"].setdefault(method, {"statuses": {}, "fine": {}})
            _add(mine["statuses"], one["statuses"])
            _add(mine["fine"], one["fine"])
            for kind in ("delivered", "asked", "overshoot"):
                if kind in one:
                    counts, total = one[kind]
                    if kind in mine:
                        mine[kind] = [
                            [a + b for a, b in zip(mine[kind][0], counts, strict=True)],
                            mine[kind][1] + total,
                        ]
                    else:
                        mine[kind] = [list(counts), total]


def _add(into: dict[int, int], more: Mapping[Any, int]) -> None:
    for index, count in more.items():
        key = int(index)
        into[key] = into.get(key, 0) + count


def subtract(now: Mapping[Any, int], before: Mapping[Any, int]) -> dict[int, int]:
    """The counts of a window (fine buckets, statuses): the counts now minus the counts at its start."""
    earlier = {int(k): v for k, v in before.items()}
    found = {}
    for key, count in now.items():
        left = count - earlier.get(int(key), 0)
        if left > 0:
            found[int(key)] = left
    return found


def difference(now: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """One worker's routes between two of its snapshots (``before`` {} for since start): what windows
    and per-minute records need (statuses, fine and overshoot buckets), in-flight counts as of now.

    Only ever between two snapshots of the *same* worker, where counts only grow; a bucket that would go
    below zero (which a sum over workers can, when one of them is missing or new) is read as zero.
    """
    delta: dict[str, Any] = {}
    for name, entry in now.items():
        old = before.get(name, {"methods": {}})
        methods = {}
        for method, one in entry["methods"].items():
            was = old["methods"].get(method)
            if was is None:
                methods[method] = {
                    "statuses": subtract(one["statuses"], {}),
                    "fine": subtract(one["fine"], {}),
                    "overshoot": [list(one["overshoot"][0]), one["overshoot"][1]],
                }
                continue
            methods[method] = {
                "statuses": subtract(one["statuses"], was["statuses"]),
                "fine": subtract(one["fine"], was["fine"]),
                "overshoot": [
                    [max(0, a - b) for a, b in zip(one["overshoot"][0], was["overshoot"][0], strict=True)],
                    max(0.0, one["overshoot"][1] - was["overshoot"][1]),
                ],
            }
        was_faults = old.get("faults", {})
        delta[name] = {
            "plugin": entry["plugin"],
            "in_flight": entry["in_flight"],
            "methods": methods,
            "faults": {
                k: n - was_faults.get(k, 0)
                for k, n in entry.get("faults", {}).items()
                if n > was_faults.get(k, 0)
            },
        }
    return delta


def percentile(fine: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a fine histogram, the upper bound of its bucket; None if empty."""
    total = sum(fine.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(fine):
        seen += fine[index]
        if seen >= rank:
            return fine_value(index)
    return fine_value(max(fine))


def bucket_quantile(bounds: tuple[float, ...], counts: list[int], q: float) -> float | None:
    """The ``q`` quantile of Prometheus buckets, interpolated inside its bucket as histogram_quantile()
    does (the +Inf bucket answers its lower bound); None if empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if seen + count >= rank and count:
            low = bounds[i - 1] if i else 0.0
            if i >= len(bounds):
                return low
            return low + (bounds[i] - low) * (rank - seen) / count
        seen += count
    return bounds[-1]


def quantiles(fine: Mapping[int, int]) -> dict[str, float | None]:
    return {"p50": percentile(fine, 0.5), "p90": percentile(fine, 0.9), "p99": percentile(fine, 0.99)}


def iter_series(merged: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """(plugin, route, method, histograms) of a merged snapshot."""
    for route, entry in merged["routes"].items():
        for method, one in entry["methods"].items():
            yield entry["plugin"], route, method, one
