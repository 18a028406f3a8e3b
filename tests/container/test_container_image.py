"""What the image promises a platform: non-root, a read-only root filesystem, a self-contained health check,
and little weight on top of its base."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import httpx
import pytest

from simulator.testing import SimulatorContainer

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def read_only(simulator_image: str) -> Iterator[SimulatorContainer]:
    """The way Fargate runs it with `readonlyRootFilesystem`: `docker run --read-only`, no tmpfs."""
    with SimulatorContainer(simulator_image).with_kwargs(read_only=True) as sim:
        yield sim


def test_runs_as_a_non_root_user(read_only: SimulatorContainer) -> None:
    result = read_only.exec(["id", "-u"])
    assert result.exit_code == 0
    assert int(result.output) != 0


def test_serves_with_a_read_only_root_filesystem(read_only: SimulatorContainer) -> None:
    assert read_only.get_wrapped_container().attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert read_only.exec(["sh", "-c", "touch /tmp/probe"]).exit_code != 0
    base_url = read_only.get_base_url()
    assert httpx.get(f"{base_url}/health").text == "healthy"
    assert httpx.get(f"{base_url}/eligibility-signposting-api/patient-check/9686368973").status_code == 200


def test_health_check_needs_nothing_beyond_the_image(
    docker_client: docker.DockerClient, simulator_image: str, read_only: SimulatorContainer
) -> None:
    test = docker_client.images.get(simulator_image).attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    assert read_only.exec(test[1:]).exit_code == 0


def test_adds_little_to_its_base(
    docker_client: docker.DockerClient, simulator_image: str, base_image: str
) -> None:
    added = (
        docker_client.images.get(simulator_image).attrs["Size"]
        - docker_client.images.get(base_image).attrs["Size"]
    )
    # About 60 MB today, mostly cryptography (PyJWT[crypto]) and uvloop; the bound catches leaked caches.
    assert added < 100 * 1024 * 1024, f"the image adds {added / 2**20:.0f} MiB to {base_image}"
