"""``simulator new-plugin NAME [DIR]``: a working plugin package in one command.

The package has the entry point, hook implementations, a settings class with its own prefix, one route
written with :class:`simulator.Router`, and a test using :class:`simulator.testing.SimulatorClient`; it
passes ``pytest``, ``ruff`` and ``mypy --strict`` with the configuration it ships, so a new fake API starts
from something that runs and is checked.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from simulator import DISTRIBUTION
from simulator.errors import StartupError

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

_FILES = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "simulator-{dist}"
version = "0.1.0"
description = "A fake {name} API for api-simulator."
requires-python = ">=3.11"
dependencies = ["{simulator}"]

[project.optional-dependencies]
test = ["{simulator}[testing]", "pytest>=8", "ruff>=0.5", "mypy>=1.10"]

# The line that makes the simulator discover this plugin.
[project.entry-points.simulator]
{name} = "simulator_{name}"

[tool.setuptools]
packages = ["simulator_{name}"]

[tool.setuptools.package-data]
simulator_{name} = ["py.typed"]

[tool.ruff]
line-length = 110

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF"]

[tool.ruff.lint.isort]
known-first-party = ["simulator_{name}"]

[tool.mypy]
strict = true
plugins = ["pydantic.mypy"]

[tool.pytest.ini_options]
testpaths = ["tests"]
filterwarnings = ["error"]
""",
    "simulator_{name}/__init__.py": '''\
"""``{name}``: a fake API plugin for api-simulator. Hook implementations only; nothing runs at import."""

from simulator import PluginSettings, Router, hookimpl

from simulator_{name}.routes import router
from simulator_{name}.settings import Settings

__version__ = "0.1.0"


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return Settings


@hookimpl
def simulator_register_routes(settings: Settings) -> Router:
    return router(settings)
''',
    "simulator_{name}/settings.py": '''\
"""Settings of the {name} plugin: every variable starts with {prefix}."""

from simulator import PluginSettings, SettingsConfigDict


class Settings(PluginSettings):
    """{prefix}DELAY_SECONDS and {prefix}DELAY come from PluginSettings; add your own fields here."""

    model_config = SettingsConfigDict(env_prefix="{prefix}")

    message: str = "hello from {name}"
''',
    "simulator_{name}/routes.py": '''\
"""Routes of the {name} plugin. Build canned responses once; handlers only pick one."""

from simulator import Request, Response, Router

from simulator_{name}.settings import Settings


def router(settings: Settings) -> Router:
    routes = Router(prefix="/{name}")
    hello = Response.json({{"message": settings.message}})

    @routes.get("/hello")
    async def get_hello(request: Request) -> Response:
        """A canned greeting."""
        return hello

    @routes.get("/echo/{{word}}")
    async def echo(request: Request, word: str, times: int = 1) -> Response:
        """The word from the path, ``times`` times (a query parameter, checked as an integer)."""
        return Response.json({{"echo": [word] * times}})

    return routes
''',
    "simulator_{name}/py.typed": "",
    "tests/test_{name}.py": '''\
"""The plugin in process: no server, no port, no environment variables read."""

from simulator.testing import SimulatorClient

import simulator_{name}
from simulator_{name}.settings import Settings


def test_hello_answers_with_the_configured_message() -> None:
    with SimulatorClient({{"{name}": simulator_{name}}}, settings=[Settings(message="hi")]) as sim:
        response = sim.get("/{name}/hello")
    assert response.status_code == 200
    assert response.json() == {{"message": "hi"}}


def test_query_parameters_are_typed() -> None:
    with SimulatorClient({{"{name}": simulator_{name}}}) as sim:
        assert sim.get("/{name}/echo/hey?times=2").json() == {{"echo": ["hey", "hey"]}}
        assert sim.get("/{name}/echo/hey?times=many").status_code == 422


def test_a_variable_configures_it_as_in_a_server() -> None:
    with SimulatorClient({{"{name}": simulator_{name}}}, env={{"{prefix}MESSAGE": "from env"}}) as sim:
        assert sim.get("/{name}/hello").json() == {{"message": "from env"}}
''',
    "Dockerfile": """\
# The simulator's image with this plugin in it. In this folder (the plugin's, next to its pyproject.toml):
#   docker build -t fake-api-{dist} .
#   docker run -p 9123:9123 -e SIMULATOR_PLUGINS=health,{name} fake-api-{dist}
# The simulator's image has no pip, on purpose, so a `RUN pip install` on top of it fails. This builds the
# plugin in a throwaway stage of that same image (same Python, same /opt/venv), and copies only the files the
# install added into the image's environment, where the simulator finds the plugin's entry point. The result
# is again pip-free, runs as uid 10001 and works with a read-only root filesystem.
# Build args: SIMULATOR_IMAGE, the image to extend (your registry's, e.g. .../fake-api:<tag>); PLUGINS, what
# pip installs (default ".", this folder; or wheels in it, or names from your index: "my-plugin==1.2 other").
ARG SIMULATOR_IMAGE=fake-api:latest

FROM ${{SIMULATOR_IMAGE}} AS simulator

FROM simulator AS build
USER root
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# pip comes from the interpreter's own ensurepip; the constraints keep every package the image holds at its
# version (the simulator included), so pip adds the plugin and its own dependencies, or stops on a conflict.
RUN python -m ensurepip >/dev/null \\
    && python -m pip list --format=freeze --exclude pip --exclude setuptools >/constraints.txt
COPY . .
ARG PLUGINS=.
RUN python -m pip install -q --no-compile --constraint /constraints.txt --root /plugins ${{PLUGINS}} \\
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash -s /plugins -p / /plugins

FROM simulator
COPY --from=build /plugins/opt/venv /opt/venv
""",
    ".dockerignore": """\
# The build context of the Dockerfile next to this file: the plugin's sources, without environments, caches
# and build output.
.git
.venv*
build
*.egg-info
**/__pycache__
**/*.py[cod]
**/.mypy_cache
**/.ruff_cache
**/.pytest_cache
""",
    "README.md": """\
# simulator-{dist}

A fake `{name}` API for api-simulator.

    python -m pip install -e '.[test]'   # the simulator discovers it through its entry point
    pytest && ruff check . && mypy .
    SIMULATOR_PLUGINS=health,{name} simulator serve
    curl localhost:9123/{name}/hello

In the simulator's Docker image (`fake-api` has no pip: the `Dockerfile` here builds a derived image):

    docker build -t fake-api-{dist} .   # --build-arg SIMULATOR_IMAGE=<your registry's fake-api image>
    docker run -p 9123:9123 -e SIMULATOR_PLUGINS=health,{name} fake-api-{dist}

| variable | default | meaning |
|---|---|---|
| `{prefix}MESSAGE` | `hello from {name}` | the greeting |
| `{prefix}DELAY_SECONDS` | `0` | fixed delay of every route |
| `{prefix}DELAY` | unset | a delay policy as JSON, e.g. `{{"policy":"lognormal","median":0.1,"p99":0.8}}` |
""",
}


def scaffold(name: str, parent: Path) -> Path:
    """Create ``parent/<name>/`` holding the plugin package; refuses bad names and existing folders."""
    if not _NAME.fullmatch(name):
        raise StartupError(
            f"plugin name {name!r} must be lower case letters, digits and _, starting with a letter"
        )
    root = parent / name
    if root.exists():
        raise StartupError(f"{root} already exists")
    values = {
        "name": name,
        "dist": name.replace("_", "-"),
        "prefix": name.upper() + "_",
        "simulator": DISTRIBUTION,
    }
    for template_path, template in _FILES.items():
        path = root / template_path.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root


def next_steps(name: str, root: Path) -> str:
    """What to run next, with this interpreter, so the plugin lands in the simulator's own environment."""
    python = shlex.quote(sys.executable)
    folder = shlex.quote(str(root))
    return "\n".join(
        (
            "next, in the environment the simulator runs from:",
            f"  cd {folder}",
            f"  {python} -m pip install -e '.[test]'",
            f"  {python} -m pytest && {python} -m ruff check . && {python} -m mypy .",
            f"  SIMULATOR_PLUGINS=health,{name} {python} -m simulator serve",
            f"  curl localhost:9123/{name}/hello",
        )
    )
