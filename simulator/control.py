"""Runtime control: each plugin's delay policy (plugin-wide and per route) and fault rules, changed while it
runs, the same in every worker.

The state of a plugin is one JSON-able object, ``{"delay": spec, "routes": {route: spec}, "faults":
[rule, ...], "version": n}``: a change replaces a plugin's whole state, so applying one twice, or late, is
harmless. The worker that takes a change validates it, applies it and hands it to every other worker over
the mesh (``simulator/peers.py``); a worker that starts (a replacement) asks the others for their state and
keeps the newest version of each plugin's. A version is the writer's clock in nanoseconds: of two changes
made through two workers at once, the later wins everywhere.

Requests never read this module: a change rebuilds the :class:`Live` object of each affected endpoint, which
the dispatcher reads (two attributes) on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from simulator.delays import DelayKind, DelayPolicy, build_policy, describe
from simulator.faults import FaultRule, for_route, parse_rules
from simulator.peers import Peers
from simulator.shared import SharedControl

log = logging.getLogger("simulator")


class Pool:
    """One worker's share of a capacity model: ``limit`` requests in service at once, ``queue_limit`` more
    waiting in arrival order; past both, :attr:`rejection` (a ``status`` rule) answers.

    A released slot goes straight to the oldest waiter, so the queue is fair and ``busy`` never dips.
    """

    __slots__ = ("_waiters", "busy", "limit", "queue_limit", "rejection")

    def __init__(self, limit: int, queue_limit: int, rejection: FaultRule) -> None:
        self.limit = limit
        self.queue_limit = queue_limit
        self.rejection = rejection
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        if self.busy < self.limit:
            self.busy += 1
            return True
        return False

    def can_queue(self) -> bool:
        return len(self._waiters) < self.queue_limit

    async def wait(self) -> None:
        """Wait for a slot (after :meth:`try_acquire` failed and :meth:`can_queue` said yes)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed a slot just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # release() may have dropped it already
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to it: busy unchanged
                return
        self.busy -= 1

    @property
    def queued(self) -> int:
        return len(self._waiters)


@dataclass(frozen=True, slots=True)
class Capacity:
    """A capacity model as configured (for the whole simulator: each worker takes its share).

    Attributes:
        concurrency: requests in service at once; more wait in the queue.
        queue: requests that may wait; more are rejected.
        status: the rejection's status (the fake's own error answer), 503 or 429.
        retry_after: the rejection's ``Retry-After`` seconds.
    """

    concurrency: int
    queue: int
    status: int = 503
    retry_after: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "queue": self.queue,
            "status": self.status,
            "retry_after": self.retry_after,
        }


def parse_capacity(body: Any) -> tuple[str | None, Capacity | None]:
    """``PUT .../capacity``: ``(route or None, the model or None to remove it)``; ``ValueError`` says why."""
    if not isinstance(body, dict):
        raise ValueError('the body is a JSON object such as {"concurrency": 50, "queue": 200}')
    unknown = set(body) - {"concurrency", "queue", "status", "retry_after", "route"}
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    route = body.get("route")
    if route is not None and not isinstance(route, str):
        raise ValueError(f"'route' must be a route's name, not {route!r:.60}")
    if body.get("concurrency") is None:
        return route, None
    values = {}
    for key, low, high, default in (
        ("concurrency", 1, 1_000_000, None),
        ("queue", 0, 1_000_000, 0),
        ("retry_after", 0, 86_400, 1),
    ):
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{key!r} must be an integer from {low} to {high}, not {value!r:.60}")
        values[key] = value
    status = body.get("status", 503)
    if isinstance(status, bool) or not isinstance(status, int) or status not in (429, 503):
        raise ValueError(f"'status' must be 429 or 503, not {status!r:.60}")
    return route, Capacity(values["concurrency"], values["queue"], status, values["retry_after"])


@dataclass(slots=True)
class Live:
    """What a request of one route reads at dispatch: its delay and the fault rules that apply to it.

    Attributes:
        delay: the policy in force, ``None`` for no delay (or an undelayed route).
        faults: ``(cumulative probability, rule)`` pairs, empty when no fault is armed.
        rng: the plugin's fault generator (seeded from ``SIMULATOR_SEED``).
        pool: the capacity model's pool the route shares (its own, or its plugin's), ``None`` for none.
    """

    delay: DelayPolicy | None
    faults: tuple[tuple[float, FaultRule], ...] = ()
    rng: random.Random = field(default_factory=random.Random)
    pool: Pool | None = None


# The parts of a plugin's state that change independently, and the fields of each.
PARTS: Final = {"delay": ("delay", "routes"), "faults": ("faults",), "capacity": ("capacity",)}


@dataclass(frozen=True, slots=True)
class PluginState:
    """A plugin's runtime configuration, as the control API shows and takes it.

    Each part (its delays, its faults, its capacity models) has its own version: two changes of different
    parts made at once through two workers both stand, and of two changes of one part the later wins.
    """

    delay: Mapping[str, Any]
    routes: Mapping[str, Mapping[str, Any]]
    faults: tuple[FaultRule, ...]
    versions: Mapping[str, int]  # part -> version (nanoseconds of the writer's clock, increasing)
    # Capacity models: "*" for the plugin's (shared by its delayed routes), or a route's own.
    capacity: Mapping[str, Capacity] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return max(self.versions.values(), default=0)

    def as_json(self) -> dict[str, Any]:
        return {
            "delay": dict(self.delay),
            "routes": {name: dict(spec) for name, spec in self.routes.items()},
            "faults": [rule.as_json() for rule in self.faults],
            "capacity": {name: model.as_json() for name, model in self.capacity.items()},
            "versions": dict(self.versions),
            "version": self.version,
        }

    def changed(self, after: int = 0, **changes: Any) -> PluginState:
        """This state with some fields replaced; the parts they belong to get a version later than this
        state's, than ``after`` and than the clock's now (a clock stepped back must not lose a change)."""
        version = max(time.time_ns(), self.version + 1, after + 1)
        parts = {part for part, fields in PARTS.items() if set(fields) & set(changes)}
        versions = {**self.versions, **dict.fromkeys(parts, version)}
        return replace(self, **changes, versions=versions)


@dataclass(frozen=True, slots=True)
class _Target:
    """One endpoint of a plugin, as control sees it."""

    route: str
    delayed: bool
    live: Live


class Control:
    """Every plugin's runtime state in this worker, and the endpoints it steers."""

    def __init__(
        self,
        kinds: Mapping[str, DelayKind],
        peers: Peers | None = None,
        workers: int = 1,
        shared: SharedControl | None = None,
    ) -> None:
        self._kinds = kinds
        self._workers = workers
        self.shared = shared
        self._pools: dict[str, dict[str, Pool]] = {}
        self._peers = peers if peers is not None else Peers(None)
        self._peers.handle("control", self._peer_change)
        self._peers.handle("control_state", self._peer_state)
        self._targets: dict[str, list[_Target]] = {}
        self._routes: dict[str, set[str]] = {}
        self._startup: dict[str, PluginState] = {}
        self._state: dict[str, PluginState] = {}
        # Each plugin's policies in force: plugin-wide, and per route (built once per change).
        self._policies: dict[str, tuple[DelayPolicy | None, dict[str, DelayPolicy | None]]] = {}

    def add_plugin(
        self,
        plugin: str,
        delay: Mapping[str, Any],
        policy: DelayPolicy | None,
        faults: Iterable[FaultRule],
        routes: Iterable[str],
    ) -> None:
        """A plugin's start-up configuration, already validated and built by the host (``policy`` is
        ``delay`` built: the same object serves every route, as a stateful policy of a plugin expects)."""
        state = PluginState(dict(delay), {}, tuple(faults), dict.fromkeys(PARTS, 0))
        self._startup[plugin] = self._state[plugin] = state
        self._policies[plugin] = (policy, {})
        self._routes[plugin] = set(routes)
        self._targets.setdefault(plugin, [])

    def add_endpoint(self, plugin: str, route: str, delayed: bool, rng: random.Random) -> Live:
        """The :class:`Live` object of one endpoint, in its plugin's start-up state."""
        live = Live(None, (), rng)
        target = _Target(route, delayed, live)
        self._targets[plugin].append(target)
        self._set(plugin, target)
        return live

    @property
    def plugins(self) -> list[str]:
        return list(self._state)

    def state(self, plugin: str) -> PluginState:
        return self._state[plugin]

    def describe_delay(self, plugin: str) -> dict[str, Any]:
        """``GET .../delay``: the plugin's policy, the per-route ones, and what each route has in force."""
        state = self._state[plugin]
        return {
            "delay": dict(state.delay),
            "routes": {name: dict(spec) for name, spec in state.routes.items()},
            "in_force": {
                t.route: describe(t.live.delay) if t.delayed else {"policy": "none", "undelayed": True}
                for t in self._targets[plugin]
            },
            "version": state.version,
        }

    # -- changes: validated here, then applied in every worker ----------------------------------------------

    def with_delay(
        self, plugin: str, body: Mapping[str, Any], base: PluginState | None = None
    ) -> PluginState:
        """The state after ``PUT .../delay`` (made on ``base``, default the state in force); ``ValueError``
        when the body is not a valid policy."""
        spec = dict(body)
        route = spec.pop("route", None)
        if route is not None and (not isinstance(route, str) or route not in self._routes[plugin]):
            names = ", ".join(sorted(self._routes[plugin])) or "(none)"
            raise ValueError(f"'route' {route!r:.60} is not one of this plugin's routes: {names}")
        build_policy(spec, self._kinds)  # raises ValueError with the reason
        state = base or self._state[plugin]
        if route is None:
            return state.changed(delay=spec, routes={})  # plugin-wide: replaces the route overrides
        return state.changed(routes={**state.routes, route: spec})

    def with_faults(self, plugin: str, body: Any, base: PluginState | None = None) -> PluginState:
        """The state after ``PUT .../faults``; ``ValueError`` when a rule is not valid."""
        return (base or self._state[plugin]).changed(faults=parse_rules(body, self._routes[plugin]))

    def with_capacity(self, plugin: str, body: Any, base: PluginState | None = None) -> PluginState:
        """The state after ``PUT .../capacity``; ``ValueError`` when the model is not valid."""
        route, model = parse_capacity(body)
        if route is not None and route not in self._routes[plugin]:
            names = ", ".join(sorted(self._routes[plugin])) or "(none)"
            raise ValueError(f"'route' {route!r:.60} is not one of this plugin's routes: {names}")
        state = base or self._state[plugin]
        capacity = dict(state.capacity)
        key = route or "*"
        if model is None:
            capacity.pop(key, None)
        else:
            capacity[key] = model
        return state.changed(capacity=capacity)

    def describe_capacity(self, plugin: str) -> dict[str, Any]:
        """``GET .../capacity``: the models (the whole simulator's), and each route's share in this worker."""
        state = self._state[plugin]
        return {
            "capacity": {name: model.as_json() for name, model in state.capacity.items()},
            "workers": self._workers,
            "in_force": {
                t.route: {
                    "concurrency": t.live.pool.limit,
                    "queue": t.live.pool.queue_limit,
                    "busy": t.live.pool.busy,
                    "queued": t.live.pool.queued,
                }
                for t in self._targets[plugin]
                if t.live.pool is not None
            },
            "version": state.version,
        }

    def startup(self, plugin: str) -> PluginState:
        """The start-up configuration, as a new change of every part (``POST /_simulator/reset``)."""
        first = self._startup[plugin]
        fields = {name: getattr(first, name) for names in PARTS.values() for name in names}
        return first.changed(self._state[plugin].version, **fields)

    def apply(self, plugin: str, data: Mapping[str, Any]) -> bool:
        """Apply the parts of a plugin's state (from :meth:`PluginState.as_json`) that are newer than those
        in force; True if any was. What another worker sends was validated there; it is checked again (the
        same code), so a malformed one raises ``ValueError`` (or ``KeyError``) and changes nothing."""
        if plugin not in self._state:
            return False
        current = self._state[plugin]
        given = data.get("versions") or dict.fromkeys(PARTS, int(data["version"]))
        newer = {part for part in PARTS if int(given.get(part, 0)) > current.versions.get(part, 0)}
        if not newer:
            return False
        kinds = self._kinds
        fields: dict[str, Any] = {}
        policies = self._policies[plugin]
        if "delay" in newer:
            previous_policy, previous_routes = policies
            # A policy whose JSON did not change is kept as it is: a stateful plugin policy keeps counting.
            policy = previous_policy if data["delay"] == current.delay else build_policy(data["delay"], kinds)
            per_route = {
                str(name): previous_routes[name]
                if current.routes.get(name) == spec and name in previous_routes
                else build_policy(spec, kinds)
                for name, spec in data["routes"].items()
            }
            fields["delay"] = dict(data["delay"])
            fields["routes"] = {str(k): dict(v) for k, v in data["routes"].items()}
            policies = (policy, per_route)
        if "faults" in newer:
            fields["faults"] = parse_rules(list(data["faults"]), self._routes[plugin])
        if "capacity" in newer:
            capacity = {}
            for name, spec in data.get("capacity", {}).items():
                _, model = parse_capacity(spec)
                if model is not None:
                    capacity[str(name)] = model
            fields["capacity"] = capacity
        versions = {**current.versions, **{part: int(given[part]) for part in newer}}
        self._state[plugin] = replace(current, **fields, versions=versions)
        self._policies[plugin] = policies
        if "capacity" in newer:
            self._build_pools(plugin, current.capacity)
        for target in self._targets[plugin]:
            self._set(plugin, target)
        return True

    def _build_pools(self, plugin: str, previous: Mapping[str, Capacity]) -> None:
        # A model that changed gets a new pool (requests already in the old one finish there); an unchanged
        # one keeps its pool, with the requests in service and waiting.
        pools = self._pools.get(plugin, {})
        self._pools[plugin] = {
            name: pools[name] if previous.get(name) == model and name in pools else self._share(model)
            for name, model in self._state[plugin].capacity.items()
        }

    def _share(self, model: Capacity) -> Pool:
        """This worker's share of a model: the whole simulator's concurrency and queue, split over the
        workers with the remainder to the first ones (every worker serves at least one at a time)."""
        index = self._peers.mesh.index if self._peers.mesh is not None else 0
        workers = self._workers

        def share(total: int) -> int:
            return total // workers + (1 if index < total % workers else 0)

        rejection = FaultRule("status", 1.0, status=model.status, retry_after=model.retry_after)
        return Pool(max(1, share(model.concurrency)), share(model.queue), rejection)

    def in_force(self, plugin: str) -> dict[str, dict[str, Any]]:
        """Each route's delay in force now, described as ``/_simulator/plugins`` shows policies."""
        return {t.route: describe(t.live.delay) for t in self._targets[plugin]}

    def plugin_delay(self, plugin: str) -> dict[str, Any]:
        """The plugin-wide policy in force now, described."""
        return describe(self._policies[plugin][0])

    def armed_by_route(self, plugin: str) -> dict[str, dict[str, float]]:
        """Route -> fault kind -> probability, for the routes of ``plugin`` with a rule armed."""
        found: dict[str, dict[str, float]] = {}
        for p, route, kind, probability in self.armed():
            if p == plugin:
                found.setdefault(route, {})[kind] = probability
        return found

    def armed(self) -> list[tuple[str, str, str, float]]:
        """``(plugin, route, kind, probability)`` for every fault kind armed on a route now."""
        found: list[tuple[str, str, str, float]] = []
        for plugin, targets in self._targets.items():
            for target in targets:
                by_kind: dict[str, float] = {}
                previous = 0.0
                for bound, rule in target.live.faults:
                    by_kind[rule.kind] = by_kind.get(rule.kind, 0.0) + bound - previous
                    previous = bound
                found.extend((plugin, target.route, kind, round(p, 9)) for kind, p in sorted(by_kind.items()))
        return found

    def snapshot(self) -> dict[str, Any]:
        """Every plugin's state, for a worker that starts (``control_state`` over the mesh)."""
        return {plugin: state.as_json() for plugin, state in self._state.items()}

    # -- every worker ---------------------------------------------------------------------------------------

    async def change(self, plugin: str, state: PluginState) -> int:
        """Put ``state`` in force here and in every other worker; how many workers have it. A worker that
        does not answer in time raises :class:`~simulator.peers.Incomplete` (the route answers 503: asking
        again is harmless, a change being a whole state)."""
        data = state.as_json()
        self.apply(plugin, data)
        if self.shared is not None:
            await self.shared.publish(plugin, data)  # every other simulator (task), within milliseconds
        answers = await self._peers.ask_all("control", complete=True, plugin=plugin, state=data)
        return 1 + len(answers)

    async def sync(self) -> None:
        """At a worker's start: adopt the newest state the others have, so that a replacement worker (after a
        crash) serves what the others serve rather than the start-up configuration; with
        ``SIMULATOR_STATE_URL``, the newest any simulator shared too, and follow their changes."""
        if self.shared is not None:
            await self.shared.start(self.apply)
        for answer in await self._peers.ask_all("control_state"):
            for plugin, data in answer.items():
                try:
                    self.apply(plugin, data)
                except (ValueError, KeyError, TypeError) as exc:  # another version's state: keep ours
                    log.warning("ignored plugin %s's control state from another worker: %s", plugin, exc)

    async def _peer_change(self, request: Mapping[str, Any]) -> Any:
        self.apply(str(request["plugin"]), request["state"])
        return True

    async def _peer_state(self, request: Mapping[str, Any]) -> Any:
        return self.snapshot()

    def _set(self, plugin: str, target: _Target) -> None:
        policy, per_route = self._policies[plugin]
        live = target.live
        live.delay = per_route.get(target.route, policy) if target.delayed else None
        live.faults = for_route(self._state[plugin].faults, target.route)
        pools = self._pools.get(plugin, {})
        live.pool = (pools.get(target.route) or pools.get("*")) if target.delayed else None
