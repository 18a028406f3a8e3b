"""Per-minute CloudWatch metrics in the Embedded Metric Format (``SIMULATOR_CLOUDWATCH=emf``).

Once a minute (``SIMULATOR_CLOUDWATCH_SECONDS``) one worker of each task (the first) sums every worker's
counts and prints EMF records to standard output; on ECS the awslogs driver ships them to CloudWatch Logs,
which turns them into metrics in ``SIMULATOR_CLOUDWATCH_NAMESPACE``, dimension ``Service``
(``SIMULATOR_SERVICE_NAME``) for the task (every interval) and ``Service``, ``Route`` per route (for the
routes that answered or held requests in the interval). What each record holds for
the minute just ended: ``Requests``, ``OvershootP99`` and ``DeliveredP99`` (milliseconds), ``InFlight`` (at
the minute's end). The scaling policies in ``terraform/`` act on ``OvershootP99`` and ``InFlight``: what the
simulator *adds* to the delay it was asked for, not the delay itself.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, TextIO

import orjson

from simulator.metrics import OVERSHOOT_BUCKETS, bucket_quantile, difference, merge_routes, percentile

# Intervals a worker may miss before it is taken for gone (replaced workers have new pids).
_FORGET_AFTER: Final = 3
_UNITS: Final = {
    "Requests": "Count",
    "OvershootP99": "Milliseconds",
    "DeliveredP99": "Milliseconds",
    "InFlight": "Count",
}


def records(
    interval: Mapping[str, Any], namespace: str, service: str, timestamp: float
) -> list[dict[str, Any]]:
    """EMF records for an interval's routes (every worker's :func:`~simulator.metrics.difference`, merged)."""
    task_overshoot = [0] * (len(OVERSHOOT_BUCKETS) + 1)
    task_delivered: dict[int, int] = {}
    task_requests = task_in_flight = 0
    made = []
    for route, entry in interval.items():
        count = 0
        overshoot = [0] * (len(OVERSHOOT_BUCKETS) + 1)
        delivered: dict[int, int] = {}
        for one in entry["methods"].values():
            count += sum(one["statuses"].values())
            overshoot = [a + b for a, b in zip(overshoot, one["overshoot"][0], strict=True)]
            for index, n in one["fine"].items():
                delivered[index] = delivered.get(index, 0) + n
        task_requests += count
        task_in_flight += entry["in_flight"]
        task_overshoot = [a + b for a, b in zip(task_overshoot, overshoot, strict=True)]
        for index, n in delivered.items():
            task_delivered[index] = task_delivered.get(index, 0) + n
        if not count and not entry["in_flight"]:
            continue  # an idle route: no record, so no billed metric (CloudWatch bills each one published)
        dimensions = {"Service": service, "Route": route}
        made.append(
            _record(namespace, timestamp, dimensions, count, overshoot, delivered, entry["in_flight"])
        )
    task = _record(
        namespace,
        timestamp,
        {"Service": service},
        task_requests,
        task_overshoot,
        task_delivered,
        task_in_flight,
    )
    return [task, *made]


def _record(
    namespace: str,
    timestamp: float,
    dimensions: dict[str, str],
    requests: int,
    overshoot: list[int],
    delivered: Mapping[int, int],
    in_flight: int,
) -> dict[str, Any]:
    values: dict[str, float] = {"Requests": requests, "InFlight": in_flight}
    for name, p99 in (
        ("OvershootP99", bucket_quantile(OVERSHOOT_BUCKETS, overshoot, 0.99)),
        ("DeliveredP99", percentile(delivered, 0.99)),
    ):
        if p99 is not None:
            values[name] = round(p99 * 1000, 3)
    return {
        "_aws": {
            "Timestamp": int(timestamp * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": _UNITS[name]} for name in values],
                }
            ],
        },
        **dimensions,
        **values,
    }


class Emitter:
    """Keeps each worker's snapshot of the last interval and prints what happened since.

    The difference is taken worker by worker (by pid), never between two sums: a worker that did not answer
    in time keeps its previous snapshot (its requests are counted in the next interval instead of lost), a
    new worker (a replacement) counts from its start, and one gone for good is forgotten.
    """

    def __init__(self, namespace: str, service: str, stream: TextIO | None = None) -> None:
        self._namespace = namespace
        self._service = service
        self._stream = stream
        self._before: dict[int, Mapping[str, Any]] = {}
        self._missed: dict[int, int] = {}
        self._last: float | None = None  # when the previous interval ended

    def emit(self, snapshots: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        interval: dict[str, Any] = {}
        seen = set()
        for snapshot in snapshots:
            pid = snapshot["pid"]
            seen.add(pid)
            before = self._before.get(pid)
            if before is not None:
                merge_routes(interval, difference(snapshot["routes"], before["routes"]))
            elif self._last is None or snapshot["started"] >= self._last:
                merge_routes(interval, difference(snapshot["routes"], {}))  # new since: all of it
            # else: a worker older than the last interval whose snapshot was missed: it counts from now.
            self._before[pid] = snapshot
        for pid in list(self._before):
            if pid not in seen:
                self._missed[pid] = self._missed.get(pid, 0) + 1
                if self._missed[pid] > _FORGET_AFTER:
                    del self._before[pid], self._missed[pid]
            else:
                self._missed.pop(pid, None)
        now = time.time()
        self._last = now
        made = records(interval, self._namespace, self._service, now)
        stream = self._stream or sys.stdout
        stream.write("".join(orjson.dumps(r).decode() + "\n" for r in made))
        stream.flush()
        return made
