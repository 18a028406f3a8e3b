"""Your own plugins in the image: the derived image of ``examples/spiky/Dockerfile``, pip's loud absence,
and a plugin's working copy mounted with ``SimulatorContainer.with_plugin_source``.

The recipe is one text in three places: ``examples/spiky/Dockerfile``, the ``Dockerfile`` that ``simulator
new-plugin`` writes, and ``docs/docker.md``. The first tests keep them equal without Docker.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import docker
import httpx
import pytest
from docker.errors import BuildError

from simulator.scaffold import scaffold
from simulator.testing import PluginSourceError, SimulatorContainer

ROOT = Path(__file__).resolve().parents[2]
SPIKY = ROOT / "examples" / "spiky"
DERIVED_TAG = "api-simulator-spiky:test"
QUOTES = {"Simple is better than complex.", "Errors should never pass silently.", "Now is better than never."}


def build_log(exc: BuildError) -> str:
    return "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)


# -- one recipe ---------------------------------------------------------------------------------------------


def test_a_new_plugin_gets_the_recipe_of_the_example(tmp_path: Path) -> None:
    project = scaffold("spiky", tmp_path)
    for name in ("Dockerfile", ".dockerignore"):
        assert (project / name).read_text() == (SPIKY / name).read_text(), name


def test_the_docs_show_the_recipe_as_it_is() -> None:
    docs = (ROOT / "docs" / "docker.md").read_text()
    assert f"```dockerfile\n{(SPIKY / 'Dockerfile').read_text()}```\n" in docs
    # The line pip's stand-in prints names the page and its section.
    assert "\n## Your own plugins in the image\n" in docs
    assert "docs/docker.md: Your own plugins in the image" in (ROOT / "Dockerfile").read_text()


# -- the derived image --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def derived_image(docker_client: docker.DockerClient, simulator_image: str) -> str:
    """examples/spiky/Dockerfile built as its first comment says, on the session's image."""
    started = time.monotonic()
    try:
        docker_client.images.build(
            path=str(SPIKY),
            tag=DERIVED_TAG,
            buildargs={"SIMULATOR_IMAGE": simulator_image},
            rm=True,
            forcerm=True,
        )
    except BuildError as exc:
        pytest.fail(f"docker build of examples/spiky failed: {exc}\n{build_log(exc)[-3000:]}", pytrace=False)
    print(f"\nbuilt {DERIVED_TAG} in {time.monotonic() - started:.1f} s")
    return DERIVED_TAG


@pytest.mark.container
def test_the_derived_image_serves_the_plugin(derived_image: str) -> None:
    # As deployed: only the plugins asked for, read-only root filesystem.
    with SimulatorContainer(derived_image, plugins=["health", "spiky"]).with_kwargs(read_only=True) as sim:
        base = sim.get_base_url()
        quote = httpx.get(f"{base}/spiky/quote")
        assert quote.status_code == 200, quote.text
        assert quote.json()["quote"] in QUOTES
        assert httpx.get(f"{base}/spiky/quotes/0").json()["quote"] == "Simple is better than complex."
        listed = {p["name"]: p for p in httpx.get(f"{base}/_simulator/plugins").json()["plugins"]}
        assert sorted(listed) == ["health", "spiky"]
        assert listed["spiky"]["version"] == "0.3.0"


@pytest.mark.container
def test_simulator_plugins_in_the_derived_image_lists_it(
    docker_client: docker.DockerClient, derived_image: str
) -> None:
    out = docker_client.containers.run(derived_image, ["plugins"], remove=True).decode()
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["spiky"][1:3] == ["0.3.0", "yes"], out
    assert "GET /spiky/quote" in out
    assert {"health", "eligibility", "apim_oauth", "nhs_login"} <= set(rows)


@pytest.mark.container
def test_the_derived_image_is_still_pip_free_and_non_root(
    docker_client: docker.DockerClient, derived_image: str
) -> None:
    script = (
        "id -u; python -c 'import pip' 2>/dev/null || echo no-pip; test -e /plugins -o -e /src || echo ok"
    )
    out = docker_client.containers.run(
        derived_image, ["-c", script], entrypoint="sh", remove=True, read_only=True
    ).decode()
    assert out.split() == ["10001", "no-pip", "ok"]


@pytest.mark.container
def test_pip_install_on_top_of_the_image_fails_loudly(
    docker_client: docker.DockerClient, simulator_image: str
) -> None:
    # As root, with the base image's own pip a step away on PATH: what used to install where nothing looks.
    naive = f"FROM {simulator_image}\nUSER root\nRUN pip install simulator-spiky\n"
    with pytest.raises(BuildError) as raised:
        docker_client.images.build(fileobj=io.BytesIO(naive.encode()), rm=True, forcerm=True)
    log = build_log(raised.value)
    assert "pip: this image has no pip, on purpose" in log
    assert "examples/spiky/Dockerfile" in log
    assert "returned a non-zero code: 1" in str(raised.value)
    for name in ("pip3", "python -m pip"):
        result = docker_client.containers.run(
            simulator_image,
            ["-c", f"{name} install x; echo rc=$?"],
            entrypoint="sh",
            remove=True,
            stderr=True,
        ).decode()
        assert result.strip().endswith("rc=1"), (name, result)


# -- a working copy, mounted -------------------------------------------------------------------------------


@pytest.fixture
def spiky_source() -> Path:
    """The example's folder as `pip install -e examples/spiky` (make venv) leaves it: with its egg-info."""
    if not list(SPIKY.glob("*.egg-info/entry_points.txt")):
        pytest.fail("examples/spiky has no egg-info: run `make venv` (pip install -e examples/spiky)")
    return SPIKY


@pytest.mark.container
def test_a_mounted_working_copy_runs_in_the_stock_image(simulator_image: str, spiky_source: Path) -> None:
    sim = SimulatorContainer(simulator_image, plugins=["spiky"]).with_plugin_source(spiky_source)
    assert sim.env["PYTHONPATH"] == "/plugins/0"
    with sim.with_kwargs(read_only=True):
        response = httpx.get(f"{sim.get_base_url()}/spiky/quote")
        assert response.status_code == 200, response.text
        assert response.json()["quote"] in QUOTES


@pytest.mark.container
def test_a_folder_without_plugin_metadata_is_refused_before_docker_runs(
    docker_client: docker.DockerClient, tmp_path: Path, spiky_source: Path
) -> None:
    (tmp_path / "simulator_weather").mkdir()
    sim = SimulatorContainer(env={"PYTHONPATH": "/extra"})
    with pytest.raises(PluginSourceError, match=re.escape("run `pip install -e .` in that folder")):
        sim.with_plugin_source(tmp_path)
    with pytest.raises(PluginSourceError, match="is not a folder"):
        sim.with_plugin_source(tmp_path / "nothing")
    sim.with_plugin_source(spiky_source)
    assert sim.env["PYTHONPATH"] == "/extra:/plugins/0"
