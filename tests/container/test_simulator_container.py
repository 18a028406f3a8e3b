"""``simulator.testing.SimulatorContainer``: its options, and its documented example in another project."""

from __future__ import annotations

import inspect
import os
import re
import textwrap
from pathlib import Path

import docker
import httpx
import pytest

from simulator.testing import DEFAULT_IMAGE, SimulatorContainer
from tests.conftest import run_pytest_project

pytestmark = pytest.mark.container


def test_options_become_the_documented_variables(docker_client: docker.DockerClient) -> None:
    sim = SimulatorContainer(
        plugins=["health", "eligibility"], env={"APIM_VALIDATION": "off"}, delays={"elid_": 2}
    )
    assert sim.image == DEFAULT_IMAGE
    token = sim.env.pop("SIMULATOR_ADMIN_TOKEN")  # random, so that set_delay() and friends work
    assert len(token) >= 16
    assert token == sim.admin_token
    assert sim.env == {
        "SIMULATOR_PLUGINS": "health,eligibility",
        "APIM_VALIDATION": "off",
        "ELID_DELAY_SECONDS": "2",
    }
    assert "SIMULATOR_ADMIN_TOKEN" not in SimulatorContainer(admin_token=None).env
    assert sim.with_plugins() is sim
    assert sim.with_delay("APIM", 0.5) is sim
    assert sim.env["SIMULATOR_PLUGINS"] == ""
    assert sim.env["APIM_DELAY_SECONDS"] == "0.5"
    with pytest.raises(ValueError, match="delay must be >= 0"):
        sim.with_delay("ELID", -1)


def test_no_plugins_still_becomes_ready(simulator_image: str) -> None:
    with SimulatorContainer(simulator_image).with_plugins() as sim:
        assert httpx.get(f"{sim.get_base_url()}/_simulator/plugins").status_code == 200
        assert httpx.get(f"{sim.get_base_url()}/health").status_code == 404


def docstring_example() -> str:
    """The `with` example in SimulatorContainer's docstring, as a user would paste it."""
    doc = inspect.getdoc(SimulatorContainer) or ""
    found = re.search(r"::\n\n((?:[ ]{4}.*\n|\n)+)", doc + "\n")
    assert found, "SimulatorContainer's docstring has no example block"
    return textwrap.dedent(found.group(1))


def test_documented_example_passes_in_a_separate_project(simulator_image: str, tmp_path: Path) -> None:
    # The user's image is whatever they built; here, the session's. Everything else is the docstring's code.
    example = docstring_example().replace(
        "SimulatorContainer(", f"SimulatorContainer({simulator_image!r}, ", 1
    )
    (tmp_path / "test_example.py").write_text(example)
    result = run_pytest_project(
        tmp_path, "test_example.py", {**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_a_missing_image_says_how_to_build_it() -> None:
    from simulator.testing import MissingImageError

    container = SimulatorContainer("fake-api-not-built-here:latest")
    with pytest.raises(MissingImageError) as raised:
        container.start()
    message = str(raised.value)
    assert "no image 'fake-api-not-built-here:latest' here" in message
    assert "docker build -t fake-api-not-built-here ." in message
