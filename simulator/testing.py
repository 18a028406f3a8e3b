"""Testing helpers: the simulator in process (plugin authors' tests) and its Docker image (testcontainers).

Needs the ``testing`` extra (``pip install "nhs-api-simulator[testing]"``). The package never imports this
module itself.

In process, with no server, no port and no environment variables read::

    from simulator.testing import SimulatorClient

    def test_hello():
        with SimulatorClient({"weather": simulator_weather}, settings=[WeatherSettings(message="hi")]) as sim:
            assert sim.get("/weather/hello").json() == {"message": "hi"}

The same as a pytest fixture, ``simulator_client`` (installed with the package; the clients it makes are
closed after the test), and for ``async`` tests :class:`AsyncSimulatorClient`. Against the real image,
:class:`SimulatorContainer`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from importlib.metadata import distributions
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

from simulator.app import SimulatorApp
from simulator.host import PluginHost
from simulator.http import Message
from simulator.settings import CoreSettings, PluginSettings

__all__ = [
    "DEFAULT_IMAGE",
    "AsyncSimulatorClient",
    "MissingImageError",
    "PluginSourceError",
    "SimulatorClient",
    "SimulatorContainer",
    "build_app",
]

#: The tag the README builds (``docker build -t fake-api .``). Pass your registry's image to use another.
DEFAULT_IMAGE = "fake-api:latest"


def build_app(
    plugins: Mapping[str, object],
    *,
    settings: Iterable[PluginSettings] = (),
    env: Mapping[str, str] | None = None,
    core: CoreSettings | None = None,
) -> SimulatorApp:
    """The simulator's ASGI application for these plugins (name -> plugin module or object).

    Args:
        plugins: the plugins to load, by name, e.g. ``{"weather": simulator_weather}``.
        settings: settings instances used as they are (``WeatherSettings(message="hi")`` reads nothing from
            the environment); plugins without one get their defaults...
        env: ...or these variables, parsed exactly as a server parses its environment
            (``{"WEATHER_DELAY": '{"policy": "fixed", "seconds": 1}'}``). ``os.environ`` is never read.
        core: the core settings (default: ``CoreSettings()``, or from ``env``).
    """
    return SimulatorApp(PluginHost.from_plugins(plugins, core=core, settings=settings, env=env))


class _Lifespan:
    """Runs an ASGI application's lifespan protocol around in-process requests, as a server would."""

    def __init__(self, app: SimulatorApp) -> None:
        self._app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _step(self, kind: str) -> None:
        await self._inbox.put({"type": f"lifespan.{kind}"})
        answer = await self._outbox.get()
        if answer["type"] != f"lifespan.{kind}.complete":
            raise RuntimeError(f"lifespan {kind} failed: {answer.get('message', answer['type'])}")

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self._app(scope, self._inbox.get, self._outbox.put))
        await self._step("startup")

    async def stop(self) -> None:
        if self._task is not None:
            await self._step("shutdown")
            await self._task
            self._task = None


class AsyncSimulatorClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` for the simulator in process; ``async with`` runs its start-up and shut-down.

    Takes the arguments of :func:`build_app`, plus ``base_url``. ``client.app`` is the application and
    ``client.host`` its plugin host.
    """

    def __init__(
        self,
        plugins: Mapping[str, object],
        *,
        settings: Iterable[PluginSettings] = (),
        env: Mapping[str, str] | None = None,
        core: CoreSettings | None = None,
        base_url: str = "http://simulator",
        **kwargs: Any,
    ) -> None:
        self.app = build_app(plugins, settings=settings, env=env, core=core)
        self.host = self.app.host
        super().__init__(transport=httpx.ASGITransport(app=self.app), base_url=base_url, **kwargs)
        self._lifespan = _Lifespan(self.app)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        await self._lifespan.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self._lifespan.stop()
        await super().__aexit__(exc_type, exc, tb)


class SimulatorClient:
    """A synchronous client of the simulator in process: ``get``, ``post``... return ``httpx.Response``.

    Takes the arguments of :func:`build_app`, plus ``base_url``; use it as a context manager (or call
    :meth:`close`). It runs its own event loop, so it works in plain (non-async) tests.
    """

    def __init__(
        self,
        plugins: Mapping[str, object],
        *,
        settings: Iterable[PluginSettings] = (),
        env: Mapping[str, str] | None = None,
        core: CoreSettings | None = None,
        base_url: str = "http://simulator",
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = AsyncSimulatorClient(plugins, settings=settings, env=env, core=core, base_url=base_url)
        self.app = self._client.app
        self.host = self._client.host
        self._loop.run_until_complete(self._client.__aenter__())

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``httpx.AsyncClient.request``, run to completion."""
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.__aexit__())
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_RANDOM: Any = object()  # SimulatorContainer's default admin token: a random one


class MissingImageError(RuntimeError):
    """SimulatorContainer's image is neither here nor pullable; the message says how to build it."""


class PluginSourceError(ValueError):
    """:meth:`SimulatorContainer.with_plugin_source` got a folder the simulator would find no plugin in."""


def _declared_plugins(folder: Path) -> list[str]:
    """The plugins the distributions' metadata in ``folder`` declares, found as the simulator finds them."""
    return sorted(
        ep.name
        for dist in distributions(path=[str(folder)])
        for ep in dist.entry_points
        if ep.group == "simulator"
    )


class SimulatorContainer(DockerContainer):
    """The api-simulator image as a testcontainers module: started, ready, and removed after the block.

    Every option becomes one of the image's documented environment variables, so a test configures it
    exactly as a deployment does.

    Args:
        image: the image to run (default ``fake-api:latest``, the README's ``docker build -t fake-api .``).
        plugins: plugin names to enable (``SIMULATOR_PLUGINS``); ``None`` = all installed, empty = none.
        env: further variables, e.g. ``{"APIM_VALIDATION": "off"}``.
        delays: fixed delay in seconds per plugin settings prefix, e.g. ``{"ELID": 2}`` sets
            ``ELID_DELAY_SECONDS=2``.
        startup_timeout: seconds to wait for the simulator to answer ``/_simulator/plugins`` with 200.
        workers: ``SIMULATOR_WORKERS``, when given.
        admin_token: ``SIMULATOR_ADMIN_TOKEN``; default a random one, so that :meth:`set_delay`,
            :meth:`set_faults` and :meth:`reset` work (``None``: control writes disabled).
        **kwargs: passed to :class:`~testcontainers.core.container.DockerContainer` (``name``,
            ``network``, ``docker_client_kw``...).

    Your own plugins: in a derived image (``examples/spiky/Dockerfile``, passed as ``image``), or, while you
    work on one, its working copy mounted into the stock image with :meth:`with_plugin_source`.

    Example, a test of a client of the eligibility API whose every answer takes 2 s, verified from the
    simulator's request journal (what it received and answered, with the delay it delivered)::

        import httpx
        from simulator.testing import SimulatorContainer

        def test_client_waits_for_a_slow_answer():
            with SimulatorContainer(plugins=["eligibility"]).with_delay("ELID", 2) as sim:
                url = f"{sim.get_base_url()}/eligibility-signposting-api/patient-check/9686368973"
                assert httpx.get(url, timeout=10).status_code == 200

                assert sim.count(route="eligibility.patient_check", status=200) == 1
                (seen,) = sim.requests(route="eligibility.patient_check")
                assert seen["delay_asked"] == 2 and seen["latency"] >= 2
                assert sim.reset_journal() == 1
                assert sim.count() == 0
    """

    PORT = 9123
    #: A core route, answered once every enabled plugin is loaded; never delayed.
    READY_PATH = "/_simulator/plugins"
    #: Where :meth:`with_plugin_source` mounts folders: ``/plugins/0``, ``/plugins/1``...
    PLUGIN_SOURCE_ROOT = "/plugins"

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        plugins: Iterable[str] | None = None,
        env: Mapping[str, str] | None = None,
        delays: Mapping[str, float] | None = None,
        startup_timeout: int = 30,
        workers: int | None = None,
        admin_token: str | None = _RANDOM,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self._plugin_sources: list[str] = []
        self.with_exposed_ports(self.PORT)
        self.admin_token = secrets.token_urlsafe(24) if admin_token is _RANDOM else admin_token
        if self.admin_token is not None:
            self.with_env("SIMULATOR_ADMIN_TOKEN", self.admin_token)
        if workers is not None:
            self.with_env("SIMULATOR_WORKERS", str(workers))
        if plugins is not None:
            self.with_plugins(*plugins)
        for key, value in (env or {}).items():
            self.with_env(key, value)
        for prefix, seconds in (delays or {}).items():
            self.with_delay(prefix, seconds)
        self.waiting_for(
            HttpWaitStrategy(self.PORT, self.READY_PATH)
            .with_startup_timeout(startup_timeout)
            .with_poll_interval(0.1)
        )

    def start(self) -> Self:
        """Start it, after making sure the image is here: a missing ``fake-api`` says how to build it, where
        Docker alone would answer with a registry's pull error."""
        import docker.errors  # type: ignore[import-untyped]  # no stubs; testcontainers brings docker

        images = self.get_docker_client().client.images
        try:
            images.get(self.image)
        except docker.errors.ImageNotFound:
            try:
                images.pull(self.image)
            except docker.errors.DockerException as exc:
                raise MissingImageError(
                    f"no image {self.image!r} here and it could not be pulled ({exc}): build it from a clone "
                    f"of the simulator with `docker build -t {self.image.removesuffix(':latest')} .`, "
                    "or pass SimulatorContainer(image=...) the image your registry holds"
                ) from None
        return super().start()

    def with_plugins(self, *names: str) -> Self:
        """Enable only these plugins (``SIMULATOR_PLUGINS``); no names enables none."""
        return self.with_env("SIMULATOR_PLUGINS", ",".join(names))

    def with_plugin_source(self, folder: str | os.PathLike[str]) -> Self:
        """Mount a plugin's working copy (read-only) and put it on the image's ``PYTHONPATH``: the plugin as
        it is on disk, without building an image. Enable it by name as any other (``with_plugins``).

        The simulator finds a plugin by its entry point, so ``folder`` must hold the plugin's package and its
        metadata: the ``<package>.egg-info`` folder that ``pip install -e .`` writes there (setuptools, as
        ``simulator new-plugin`` projects use; run it again after changing the entry points), or a
        ``.dist-info`` folder. Code changes need only a new container. Pure-Python plugins only: the image's
        Python imports the code, and the plugin's own dependencies must already be in the image.

        Raises:
            PluginSourceError: ``folder`` is not a folder or declares no ``simulator`` entry point.
        """
        path = Path(folder).resolve()
        if not path.is_dir():
            raise PluginSourceError(f"plugin source {str(path)!r} is not a folder")
        if not _declared_plugins(path):
            raise PluginSourceError(
                f"no plugin metadata in {str(path)!r}: the simulator finds a plugin by the `simulator` entry "
                "point of a <package>.egg-info or .dist-info folder next to its package; run "
                "`pip install -e .` in that folder once (setuptools writes it there)"
            )
        target = f"{self.PLUGIN_SOURCE_ROOT}/{len(self._plugin_sources)}"
        self._plugin_sources.append(target)
        self.with_volume_mapping(str(path), target, "ro")
        return self.with_env("PYTHONPATH", ":".join(filter(None, (self.env.get("PYTHONPATH"), target))))

    def with_delay(self, prefix: str, seconds: float) -> Self:
        """Delay every answer of the plugin whose settings prefix is ``prefix`` (``"ELID"``, ``"APIM"``)."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds}")
        return self.with_env(f"{prefix.rstrip('_').upper()}_DELAY_SECONDS", str(seconds))

    def get_base_url(self) -> str:
        """``http://host:port`` of the running simulator, as reachable from the test process."""
        return f"http://{self.get_container_host_ip()}:{self.get_exposed_port(self.PORT)}"

    # -- steering while it runs (the control API; in force in every worker when the call returns) ----------

    def set_delay(self, plugin: str, delay: float | Mapping[str, Any], *, route: str | None = None) -> None:
        """Change a plugin's delay: seconds, or a ``<PREFIX>_DELAY`` object; ``route`` for one route only."""
        body = dict(delay) if isinstance(delay, Mapping) else {"policy": "fixed", "seconds": delay}
        if route is not None:
            body["route"] = route
        self._control("PUT", f"/_simulator/plugins/{plugin}/delay", body)

    def set_faults(self, plugin: str, rules: Iterable[Mapping[str, Any]]) -> None:
        """Arm a plugin's fault rules (``[{"kind": "status", "status": 503, "probability": 0.05}]``); ``[]``
        disarms."""
        self._control("PUT", f"/_simulator/plugins/{plugin}/faults", [dict(rule) for rule in rules])

    def reset(self) -> None:
        """Every plugin's delay, faults and capacity back to their start-up configuration; no scenario."""
        self._control("POST", "/_simulator/reset", None)

    def _control(self, method: str, path: str, body: Any) -> None:
        headers = {"authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        for attempt in range(10):  # 503: a worker did not take the change in time; asking again is harmless
            response = httpx.request(
                method, self.get_base_url() + path, json=body, headers=headers, timeout=30
            )
            if response.status_code != 503 or attempt == 9:
                break
            time.sleep(0.5)
        if response.is_error:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:500]}")

    # -- verification, from the request journal (every worker's), WireMock-style ---------------------------

    def requests(
        self,
        *,
        plugin: str | None = None,
        route: str | None = None,
        status: int | str | None = None,
        since: float | str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """The requests the simulator answered, newest first (``GET /_simulator/requests``), filtered by
        ``route="eligibility.patient_check"``, ``status=404`` or ``"5xx"``, ``since`` (epoch seconds, ISO)."""
        params = {"plugin": plugin, "route": route, "status": status, "since": since, "limit": limit}
        response = self._journal("GET", params={k: str(v) for k, v in params.items() if v is not None})
        answer = response.json()
        if answer["truncated"]:
            raise AssertionError(
                "the journal's answer was cut at its byte limit (bodies on?): narrow the filters or the limit"
            )
        found: list[dict[str, Any]] = answer["requests"]
        return found

    def count(self, **filters: Any) -> int:
        """How many journalled requests match (the filters of :meth:`requests`; at most 100,000, and at most
        what the journals hold: ``SIMULATOR_JOURNAL_SIZE`` per worker)."""
        return len(self.requests(**{"limit": 100_000, **filters}))

    def reset_journal(self) -> int:
        """Empty every worker's journal (``DELETE /_simulator/requests``); the number of entries dropped."""
        response = self._journal("DELETE")
        cleared: int = response.json()["cleared"]
        return cleared

    def _journal(self, method: str, params: dict[str, str] | None = None) -> httpx.Response:
        # A 503 means a worker did not answer in time (being replaced): the journal asks every one.
        for attempt in range(10):
            response = httpx.request(
                method, f"{self.get_base_url()}/_simulator/requests", params=params, timeout=30
            )
            if response.status_code != 503 or attempt == 9:
                break
            time.sleep(0.5)
        response.raise_for_status()
        return response
