"""The merged metrics of every worker in Prometheus's text exposition format (``/_simulator/metrics``).

Names (a contract): ``simulator_requests_total{plugin,route,method,status}``; the histograms
``simulator_response_seconds`` (delivered: arrival to the answer handed to the socket),
``simulator_delay_asked_seconds`` and ``simulator_overshoot_seconds`` (delivered minus asked), all
``{plugin,route,method}``; ``simulator_in_flight{plugin,route}``;
``simulator_faults_total{plugin,route,kind}`` and ``simulator_fault_probability{plugin,route,kind}`` (the
rules in force); ``simulator_capacity_queued{plugin,route}`` and ``simulator_capacity_rejected_total``;
``simulator_scenario_phase{scenario,phase}``; and the process-level series below.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

import simulator
from simulator.metrics import LATENCY_BUCKETS, OVERSHOOT_BUCKETS, iter_series

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HISTOGRAMS = (
    (
        "delivered",
        "simulator_response_seconds",
        "Delivered latency: request arrival to the answer written",
        LATENCY_BUCKETS,
    ),
    ("asked", "simulator_delay_asked_seconds", "The delay each request was asked to have", LATENCY_BUCKETS),
    (
        "overshoot",
        "simulator_overshoot_seconds",
        "Delivered latency minus the delay asked for",
        OVERSHOOT_BUCKETS,
    ),
)


class _Collector:
    def __init__(
        self,
        merged: Mapping[str, Any],
        seed: int | None,
        armed: Iterable[tuple[str, str, str, float]],
        phase: tuple[str, str] | None,
    ) -> None:
        self._merged = merged
        self._seed = seed
        self._armed = armed
        self._phase = phase

    def collect(self) -> Iterator[Metric]:
        merged = self._merged
        info = GaugeMetricFamily(
            "simulator_info", "The simulator's version and seed", labels=["version", "seed"]
        )
        info.add_metric([simulator.__version__, "" if self._seed is None else str(self._seed)], 1)
        yield info
        workers = GaugeMetricFamily("simulator_workers", "Worker processes whose figures this scrape sums")
        workers.add_metric([], merged["workers"])
        yield workers
        restarts = CounterMetricFamily("simulator_worker_restarts", "Workers the supervisor replaced")
        restarts.add_metric([], merged["restarts"])
        yield restarts
        if merged["connections"] is not None:
            connections = GaugeMetricFamily("simulator_open_connections", "Open client connections")
            connections.add_metric([], merged["connections"])
            yield connections
        unrouted = CounterMetricFamily("simulator_unrouted_requests", "Requests for no plugin route (404)")
        unrouted.add_metric([], merged["unrouted"])
        yield unrouted

        requests = CounterMetricFamily(
            "simulator_requests",
            "Answers by plugin, route, method and status",
            labels=["plugin", "route", "method", "status"],
        )
        in_flight = GaugeMetricFamily(
            "simulator_in_flight", "Requests being answered", labels=["plugin", "route"]
        )
        for route, entry in merged["routes"].items():
            in_flight.add_metric([entry["plugin"], route], entry["in_flight"])
            for method, one in sorted(entry["methods"].items()):
                for status, count in sorted(one["statuses"].items()):
                    requests.add_metric([entry["plugin"], route, method, str(status)], count)
        yield requests
        yield in_flight
        fired = CounterMetricFamily(
            "simulator_faults",
            "Requests a fault rule fired on, by kind",
            labels=["plugin", "route", "kind"],
        )
        for route, entry in merged["routes"].items():
            for kind, count in sorted(entry.get("faults", {}).items()):
                fired.add_metric([entry["plugin"], route, kind], count)
        yield fired
        queued = GaugeMetricFamily(
            "simulator_capacity_queued",
            "Requests waiting for a capacity model's slot",
            labels=["plugin", "route"],
        )
        rejected = CounterMetricFamily(
            "simulator_capacity_rejected",
            "Requests a capacity model turned away (its queue was full)",
            labels=["plugin", "route"],
        )
        for route, entry in merged["routes"].items():
            queued.add_metric([entry["plugin"], route], entry.get("queued", 0))
            rejected.add_metric([entry["plugin"], route], entry.get("rejected", 0))
        yield queued
        yield rejected
        armed = GaugeMetricFamily(
            "simulator_fault_probability",
            "The probability a fault kind fires on a request of a route, as armed now",
            labels=["plugin", "route", "kind"],
        )
        for plugin, route, kind, probability in self._armed:
            armed.add_metric([plugin, route, kind], probability)
        yield armed
        phase = GaugeMetricFamily(
            "simulator_scenario_phase",
            "The scenario phase in force (1), if any",
            labels=["scenario", "phase"],
        )
        if self._phase is not None:
            phase.add_metric(list(self._phase), 1)
        yield phase
        for kind, name, documentation, bounds in _HISTOGRAMS:
            family = HistogramMetricFamily(name, documentation, labels=["plugin", "route", "method"])
            for plugin, route, method, one in iter_series(merged):
                if kind not in one:
                    continue
                counts, total = one[kind]
                cumulative, buckets = 0, []
                for bound, count in zip((*bounds, float("inf")), counts, strict=True):
                    cumulative += count
                    buckets.append((_le(bound), cumulative))
                family.add_metric([plugin, route, method], buckets, sum_value=total)
            yield family

        entries = GaugeMetricFamily(
            "simulator_store_entries", "Entries of a bounded store", labels=["plugin", "store"]
        )
        size = GaugeMetricFamily(
            "simulator_store_bytes", "Bytes a bounded store counts", labels=["plugin", "store"]
        )
        for (plugin, store), (count, used) in sorted(merged["stores"].items()):
            entries.add_metric([plugin, store], count)
            size.add_metric([plugin, store], used)
        yield entries
        yield size
        events = CounterMetricFamily(
            "simulator_plugin_events", "Plugins' own counters", labels=["plugin", "event"]
        )
        for (plugin, event), value in sorted(merged["counters"].items()):
            events.add_metric([plugin, event], value)
        yield events
        gauges = GaugeMetricFamily("simulator_plugin_gauge", "Plugins' own gauges", labels=["plugin", "name"])
        for (plugin, name), value in sorted(merged["gauges"].items()):
            gauges.add_metric([plugin, name], value)
        yield gauges


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def render(
    merged: Mapping[str, Any],
    seed: int | None,
    armed: Iterable[tuple[str, str, str, float]] = (),
    phase: tuple[str, str] | None = None,
) -> bytes:
    """``armed``: ``(plugin, route, kind, probability)`` of the fault rules in force, and ``phase``:
    ``(scenario, phase)`` in force; the same in every worker, so taken from the one answering."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(merged, seed, armed, phase))
    return generate_latest(registry)
