"""Run the simulator's Docker image from your own tests, with testcontainers.

Needs the ``testing`` extra (``pip install "api-simulator[testing]"``) and a Docker engine. The package
itself never imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

__all__ = ["DEFAULT_IMAGE", "SimulatorContainer"]

#: The tag the README builds (``docker build -t fake-api .``). Pass your registry's image to use another.
DEFAULT_IMAGE = "fake-api:latest"


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
