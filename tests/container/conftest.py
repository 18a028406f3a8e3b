"""The real image: built once per session from the repository's Dockerfile, run through testcontainers.

Without a Docker engine these tests skip with the reason in one line; ``TEST_REQUIRE_DOCKER=1`` (CI) turns
the skip into a failure, so CI cannot pass without running them.
"""

from __future__ import annotations

import gc
import os
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import BuildError, DockerException

# Ryuk, testcontainers' reaper, is an image pulled from Docker Hub, which some machines cannot reach; every
# container here is removed by its `with` block anyway. Set before testcontainers reads its configuration.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

ROOT = Path(__file__).resolve().parents[2]
TAG = "api-simulator:test"


def engine_problem() -> str | None:
    """None when a Docker engine answers, else why not, in one line."""
    with warnings.catch_warnings():
        # docker-py's unix transport leaks the socket of a failed connection; its ResourceWarning, raised when
        # the socket is collected, would fail the session under `filterwarnings = error`.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env()
        except DockerException as exc:
            return " ".join(f"{type(exc).__name__}: {exc}".split())
        finally:
            gc.collect()
    client.close()
    return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    problem = engine_problem()
    if problem is not None:
        reason = f"no Docker engine answers ({problem})"
        if os.environ.get("TEST_REQUIRE_DOCKER") == "1":
            pytest.fail(f"{reason}; TEST_REQUIRE_DOCKER=1 requires one", pytrace=False)
        pytest.skip(f"{reason}; set TEST_REQUIRE_DOCKER=1 to fail instead")
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def simulator_image(docker_client: docker.DockerClient) -> str:
    """Build the Dockerfile as users do (the Engine API's classic builder, as `DOCKER_BUILDKIT=0`)."""
    started = time.monotonic()
    try:
        docker_client.images.build(path=str(ROOT), tag=TAG, rm=True, forcerm=True)
    except BuildError as exc:
        tail = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
        pytest.fail(f"docker build failed: {exc}\n{tail[-3000:]}", pytrace=False)
    print(f"\nbuilt {TAG} in {time.monotonic() - started:.1f} s")
    return TAG


@pytest.fixture(scope="session")
def base_image() -> str:
    """The Dockerfile's default ``PYTHON_IMAGE``: what the image is built ``FROM``."""
    found = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert found, "the Dockerfile declares no ARG PYTHON_IMAGE=<default>"
    return found.group(1)
