"""Scenarios over time: a timeline of phases, each changing some plugins' delay, faults or capacity at its
time, so that a load test's brownout is reproducible and visible.

A timeline, as JSON (``PUT /_simulator/scenario``) or a JSON or YAML file (``SIMULATOR_SCENARIO``)::

    {"name": "brownout", "phases": [
      {"at": 0, "name": "normal"},
      {"at": 60, "name": "slow and failing", "plugins": {"eligibility": {
          "delay": {"policy": "lognormal", "median": 0.5, "p99": 3},
          "faults": [{"kind": "status", "status": 503, "probability": 0.05}]}}},
      {"at": 120, "name": "recovered", "reset": true}
    ]}

``at`` is seconds from the scenario's start, increasing. A phase's ``plugins`` maps a plugin to the changes
``PUT .../delay``, ``.../faults`` and ``.../capacity`` take (their bodies); ``reset`` first puts every plugin
back to its start-up configuration. What a phase does not mention stays as it was. The last phase lasts
until something else changes.

One worker conducts (the one that took the ``PUT``, or the first worker for ``SIMULATOR_SCENARIO``): at each
phase's time it makes the phase's changes through :class:`~simulator.control.Control`, which puts them in
force in every worker, and tells every worker which phase is in force (for the metrics and the dashboard).
A worker that starts (a replacement) adopts the others' scenario; if it is the conductor's replacement it
conducts the phases still to come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from simulator.control import Control, PluginState
from simulator.peers import Peers
from simulator.settings import read_setting_file

log = logging.getLogger("simulator")

MAX_PHASES: Final = 1000
MAX_FILE_BYTES: Final = 1 << 20
_PHASE_KEYS: Final = frozenset({"at", "name", "plugins", "reset"})
_CHANGES: Final = ("delay", "faults", "capacity")


@dataclass(frozen=True, slots=True)
class Phase:
    at: float
    name: str
    changes: Mapping[str, Mapping[str, Any]]  # plugin -> {"delay"|"faults"|"capacity": body}
    reset: bool


def parse(value: Any, control: Control) -> tuple[str, tuple[Phase, ...]]:
    """A timeline checked against the enabled plugins (every change validated as its ``PUT`` would be);
    ``ValueError`` names the phase and what is wrong."""
    if not isinstance(value, dict) or set(value) - {"name", "phases"}:
        raise ValueError('a scenario is a JSON object {"name"?: ..., "phases": [...]}')
    name = value.get("name", "scenario")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise ValueError("'name' must be a string of 1 to 100 characters")
    phases = value.get("phases")
    if not isinstance(phases, list) or len(phases) > MAX_PHASES:
        raise ValueError(f"'phases' must be a list of at most {MAX_PHASES} phases")
    found: list[Phase] = []
    for index, phase in enumerate(phases):
        try:
            found.append(_phase(phase, control, found[-1].at if found else None))
        except ValueError as exc:
            raise ValueError(f"phase {index}: {exc}") from None
    return name, tuple(found)


def _phase(phase: Any, control: Control, previous: float | None) -> Phase:
    if not isinstance(phase, dict):
        raise ValueError("a phase is a JSON object")
    unknown = set(phase) - _PHASE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    at = phase.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or at < 0:
        raise ValueError(f"'at' must be seconds from the start (>= 0), not {at!r:.60}")
    if previous is not None and at <= previous:
        raise ValueError(f"'at' must be later than the phase before ({previous:g} s), not {at!r}")
    if at > 366 * 86_400:
        raise ValueError("'at' must be within a year of the start")
    name = phase.get("name", f"at {at:g} s")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise ValueError("'name' must be a string of 1 to 100 characters")
    reset = phase.get("reset", False)
    if not isinstance(reset, bool):
        raise ValueError("'reset' must be true or false")
    plugins = phase.get("plugins", {})
    if not isinstance(plugins, dict):
        raise ValueError("'plugins' must map plugin names to changes")
    changes: dict[str, dict[str, Any]] = {}
    for plugin, change in plugins.items():
        if plugin not in control.plugins:
            raise ValueError(f"no enabled plugin {plugin!r:.60}; enabled: {', '.join(control.plugins)}")
        if not isinstance(change, dict) or not change or set(change) - set(_CHANGES):
            raise ValueError(f"plugin {plugin}: give one or more of {', '.join(_CHANGES)}")
        _validate(control, plugin, change)
        changes[plugin] = dict(change)
    return Phase(float(at), name, changes, reset)


def _validate(control: Control, plugin: str, change: Mapping[str, Any]) -> None:
    try:
        if "delay" in change:
            if not isinstance(change["delay"], dict):
                raise ValueError("a delay is a JSON object")
            control.with_delay(plugin, change["delay"])
        if "faults" in change:
            control.with_faults(plugin, change["faults"])
        if "capacity" in change:
            control.with_capacity(plugin, change["capacity"])
    except ValueError as exc:
        raise ValueError(f"plugin {plugin}: {exc}") from None


def load_file(path: str, control: Control) -> Any:
    """``SIMULATOR_SCENARIO``'s file, JSON or YAML (by its suffix); ``ValueError`` says why not.

    Read without blocking and bounded (a FIFO, a device or a folder is refused before a byte is read);
    what it holds must be JSON-compatible, as a ``PUT /_simulator/scenario`` body is.
    """
    text = read_setting_file(path, MAX_FILE_BYTES)
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not YAML: {' '.join(str(exc).split())[:200]}") from None
        except RecursionError:
            raise ValueError("not usable YAML: nested too deeply") from None
        try:
            orjson.dumps(value)
        except TypeError as exc:  # a YAML set or binary, or nested too deeply for JSON
            raise ValueError(f"not JSON-compatible YAML: {exc}") from None
        return value
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


class Conductor:
    """This worker's view of the scenario, and its conducting when it is the one that conducts."""

    def __init__(self, control: Control, peers: Peers) -> None:
        self._control = control
        self._peers = peers
        self._task: asyncio.Task[None] | None = None
        # What every worker knows: the timeline, its start (epoch seconds), the phase in force, who conducts.
        self.status: dict[str, Any] | None = None
        peers.handle("scenario", self._peer_status)
        peers.handle("scenario_state", self._peer_state)

    @property
    def phase(self) -> str | None:
        if self.status is None or self.status["phase"] is None:
            return None
        return str(self.status["phases"][self.status["phase"]]["name"])

    async def start(self, raw: Any, *, started: float | None = None) -> dict[str, Any]:
        """Start a validated timeline now (or from ``started``), replacing any; conducted by this worker."""
        name, phases = parse(raw, self._control)
        await self.stop()
        begun = time.time() if started is None else started
        self.status = {
            "name": name,
            "started": begun,
            "phases": [{"at": p.at, "name": p.name, "entered": None} for p in phases],
            "phase": None,
            "raw": raw,
            "id": self._next_id(),
            "version": 0,
        }
        self._task = asyncio.create_task(self._conduct(phases, begun))
        # Every worker learns of it now: one that conducted another scenario stops (a worker that does not
        # answer makes this a 503; the timeline runs here regardless, and asking again restarts it).
        await self._tell(complete=True)
        return self.status

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def clear(self) -> None:
        """No scenario (``PUT`` with no phases, or ``POST /_simulator/reset``), in every worker (a worker that
        does not answer makes it a 503: it might go on conducting)."""
        await self.stop()
        self.status = {
            "name": None,
            "phases": [],
            "phase": None,
            "started": None,
            "id": self._next_id(),
            "version": 0,
        }
        await self._tell(complete=True)

    def _next_id(self) -> int:
        # Scenarios are ordered by this id (a clock stepped back must not revive an older one).
        return max(time.time_ns(), int((self.status or {}).get("id", 0)) + 1)

    async def sync(self) -> None:
        """At a worker's start: adopt the newest scenario the others know; conduct it if its conductor was
        this worker's index (a replacement), from the phase due now."""
        for answer in await self._peers.ask_all("scenario_state"):
            if answer and (self.status is None or _order(answer) > _order(self.status)):
                self.status = answer
        mesh = self._peers.mesh
        status = self.status
        if status and status.get("phases") and mesh is not None and status.get("conductor") == mesh.index:
            _, phases = parse(status["raw"], self._control)
            done = status["phase"]
            remaining = phases if done is None else phases[done + 1 :]
            self._task = asyncio.create_task(self._conduct(remaining, status["started"], resumed=True))

    async def _conduct(self, phases: tuple[Phase, ...], started: float, *, resumed: bool = False) -> None:
        for phase in phases:
            await asyncio.sleep(max(0.0, started + phase.at - time.time()))
            await self._enter(phase)

    async def _enter(self, phase: Phase) -> None:
        control = self._control
        for plugin in control.plugins:
            change = phase.changes.get(plugin)
            if not phase.reset and change is None:
                continue
            state: PluginState = control.startup(plugin) if phase.reset else control.state(plugin)
            if change is not None:
                state = _with(control, plugin, state, change)
            try:
                await control.change(plugin, state)
            except Exception as exc:  # a worker that did not take it: the others have it; keep time
                log.warning(
                    "scenario phase %r: plugin %s's change did not reach every worker: %s",
                    phase.name,
                    plugin,
                    exc,
                )
        assert self.status is not None
        index = next(i for i, p in enumerate(self.status["phases"]) if p["at"] == phase.at)
        self.status["phase"] = index
        self.status["phases"][index]["entered"] = time.time()
        self.status["version"] += 1
        log.info("scenario %s: phase %r", self.status["name"], phase.name)
        try:
            await self._tell()
        except Exception as exc:
            log.warning("scenario phase %r: not every worker was told: %s", phase.name, exc)

    async def _tell(self, *, complete: bool = False) -> None:
        assert self.status is not None
        mesh = self._peers.mesh
        self.status["conductor"] = mesh.index if mesh is not None else 0
        await self._peers.ask_all("scenario", complete=complete, status=self.status)

    async def _peer_status(self, request: Mapping[str, Any]) -> Any:
        status = request["status"]
        if self.status is None or _order(status) >= _order(self.status):
            if self.status is None or status.get("id") != self.status.get("id"):
                await self.stop()  # another scenario (or none) now: whoever conducted here stops
            self.status = dict(status)
        return True

    async def _peer_state(self, request: Mapping[str, Any]) -> Any:
        return self.status or {}

    def describe(self) -> dict[str, Any]:
        status = self.status or {"name": None, "phases": [], "phase": None, "started": None}
        started = status.get("started")
        return {
            "name": status["name"],
            "phases": status["phases"],
            "phase": self.phase,
            "started": started,
            "elapsed": round(time.time() - started, 3) if started else None,
        }


def _order(status: Mapping[str, Any]) -> tuple[int, int]:
    """Which of two statuses is newer: the later scenario, then the later phase of it."""
    return int(status.get("id", 0)), int(status.get("version", 0))


def _with(control: Control, plugin: str, state: PluginState, change: Mapping[str, Any]) -> PluginState:
    """``state`` with a phase's changes to one plugin made (validated when the timeline was)."""
    if "delay" in change:
        state = control.with_delay(plugin, change["delay"], state)
    if "faults" in change:
        state = control.with_faults(plugin, change["faults"], state)
    if "capacity" in change:
        state = control.with_capacity(plugin, change["capacity"], state)
    return state
