"""The distribution as a user gets it: a wheel in a plain venv, under its own name, with the ``testing`` extra
running a ``SimulatorContainer`` test, and a plugin scaffolded from it.

Slow (two virtualenvs, packages from the index): the wheel is built and installed once per session.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from simulator import DISTRIBUTION
from tests.conftest import clean_env, free_port
from tests.container import conftest as container

# The Docker engine and the image built from this repository, for the container test below.
docker_client = container.docker_client
simulator_image = container.simulator_image

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def sh(command: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv (no --system-site-packages) with this repository's wheel, its testing extra, and pytest."""
    where = tmp_path_factory.mktemp("plain")
    built = sh(f"{sys.executable} -m pip wheel -q --no-deps -w wheels {ROOT}", where)
    assert built.returncode == 0, built.stderr
    (wheel,) = (where / "wheels").glob("*.whl")
    assert wheel.name.startswith(f"{DISTRIBUTION.replace('-', '_')}-")
    made = sh(f"{sys.executable} -m venv venv && venv/bin/pip install -q '{wheel}[testing]' pytest", where)
    assert made.returncode == 0, made.stderr
    return where / "venv"


def test_the_wheel_is_named_after_our_distribution(plain_venv: Path) -> None:
    shown = sh(f"{plain_venv}/bin/pip show {DISTRIBUTION}", plain_venv)
    assert shown.returncode == 0, shown.stderr
    assert f"Name: {DISTRIBUTION}" in shown.stdout
    # The command keeps its name, and the unrelated `api-simulator` of PyPI is nowhere.
    helped = sh(f"{plain_venv}/bin/simulator --help", plain_venv)
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout
    assert sh(f"{plain_venv}/bin/pip show api-simulator", plain_venv).returncode != 0


TINY_CONTAINER_TEST = """\
import sys
from pathlib import Path

import httpx
import simulator
from simulator.testing import SimulatorContainer


def test_health_from_the_image():
    assert Path(simulator.__file__).is_relative_to(sys.prefix)  # the wheel's, not this repository's
    with SimulatorContainer({image!r}, plugins=["health"]) as sim:
        response = httpx.get(sim.get_base_url() + "/health")
    assert (response.status_code, response.text) == (200, "healthy")
"""


@pytest.mark.container
def test_the_testing_extra_runs_a_simulator_container_test(
    plain_venv: Path, simulator_image: str, tmp_path: Path
) -> None:
    (tmp_path / "test_tiny.py").write_text(TINY_CONTAINER_TEST.format(image=simulator_image))
    env = clean_env({"TESTCONTAINERS_RYUK_DISABLED": "true"})
    env.pop("PYTHONPATH", None)
    ran = subprocess.run(
        [f"{plain_venv}/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tiny.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout


def test_a_scaffolded_plugin_passes_its_printed_next_steps_in_a_plain_venv(
    plain_venv: Path, tmp_path: Path
) -> None:
    created = sh(f"{plain_venv}/bin/simulator new-plugin weather .", tmp_path)
    assert created.returncode == 0, created.stderr
    steps = [line.strip() for line in created.stdout.splitlines()[2:]]
    cd, install, checks, serve, curl = steps
    assert cd.startswith("cd ")
    assert "pip install -e '.[test]'" in install
    done = sh(" && ".join((cd, install, checks)), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    assert "Success: no issues found" in done.stdout

    port = free_port()
    server = subprocess.Popen(
        ["bash", "-c", f"SIMULATOR_HOST=127.0.0.1 SIMULATOR_PORT={port} {serve}"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = curl.split()[-1].replace("localhost:9123", f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the scaffolded plugin's server did not answer"
                time.sleep(0.1)
        assert response.json() == {"message": "hello from weather"}
    finally:
        subprocess.run(["pkill", "-TERM", "-s", str(server.pid)], check=False)
        server.wait(timeout=30)
