"""Testing helpers: the simulator in process (plugin authors' tests) and its Docker image (testcontainers).

Needs the ``testing`` extra (``pip install "api-simulator[testing]"``). The package never imports this
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
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

from simulator.app import SimulatorApp
from simulator.host import PluginHost
from simulator.http import Message
from simulator.settings import CoreSettings, PluginSettings

__all__ = ["DEFAULT_IMAGE", "AsyncSimulatorClient", "SimulatorClient", "SimulatorContainer", "build_app"]

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
        **kwargs: passed to :class:`~testcontainers.core.container.DockerContainer` (``name``,
            ``network``, ``docker_client_kw``...).

    Example, a test of a client of the eligibility API whose every answer takes 2 s::

        import httpx
        from simulator.testing import SimulatorContainer

        def test_client_waits_for_a_slow_answer():
            with SimulatorContainer(plugins=["eligibility"]).with_delay("ELID", 2) as sim:
                url = f"{sim.get_base_url()}/eligibility-signposting-api/patient-check/9686368973"
                assert httpx.get(url, timeout=10).status_code == 200
    """

    PORT = 9123
    #: A core route, answered once every enabled plugin is loaded; never delayed.
    READY_PATH = "/_simulator/plugins"

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        plugins: Iterable[str] | None = None,
        env: Mapping[str, str] | None = None,
        delays: Mapping[str, float] | None = None,
        startup_timeout: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self.with_exposed_ports(self.PORT)
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

    def with_plugins(self, *names: str) -> Self:
        """Enable only these plugins (``SIMULATOR_PLUGINS``); no names enables none."""
        return self.with_env("SIMULATOR_PLUGINS", ",".join(names))

    def with_delay(self, prefix: str, seconds: float) -> Self:
        """Delay every answer of the plugin whose settings prefix is ``prefix`` (``"ELID"``, ``"APIM"``)."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds}")
        return self.with_env(f"{prefix.rstrip('_').upper()}_DELAY_SECONDS", str(seconds))

    def get_base_url(self) -> str:
        """``http://host:port`` of the running simulator, as reachable from the test process."""
        return f"http://{self.get_container_host_ip()}:{self.get_exposed_port(self.PORT)}"
