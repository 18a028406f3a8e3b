"""``simulator new-plugin NAME [DIR]``: a working plugin package in one command.

The package has the entry point, hook implementations, a settings class with its own prefix, one route
and one passing test, so a new fake API starts from something that runs.
"""

from __future__ import annotations

import re
from pathlib import Path

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
dependencies = ["api-simulator"]

[project.optional-dependencies]
test = ["pytest", "httpx"]

# The line that makes the simulator discover this plugin.
[project.entry-points.simulator]
{name} = "simulator_{name}"

[tool.setuptools]
packages = ["simulator_{name}"]
""",
    "simulator_{name}/__init__.py": '''\
"""``{name}``: a fake API plugin for api-simulator. Hook implementations only; nothing runs at import."""

from collections.abc import Iterable

from simulator import PluginSettings, Route, hookimpl
from simulator_{name}.routes import routes
from simulator_{name}.settings import Settings

__version__ = "0.1.0"


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return Settings


@hookimpl
def simulator_register_routes(settings: Settings) -> Iterable[Route]:
    return routes(settings)
''',
    "simulator_{name}/settings.py": '''\
"""Settings of the {name} plugin: every variable starts with {prefix}."""

from pydantic_settings import SettingsConfigDict

from simulator import PluginSettings


class Settings(PluginSettings):
    """{prefix}DELAY_SECONDS and {prefix}DELAY come from PluginSettings; add your own fields here."""

    model_config = SettingsConfigDict(env_prefix="{prefix}")

    message: str = "hello from {name}"
''',
    "simulator_{name}/routes.py": '''\
"""Routes of the {name} plugin. Build canned responses once; handlers only pick one."""

from collections.abc import Iterable

from simulator import Request, Response, Route
from simulator_{name}.settings import Settings


def routes(settings: Settings) -> Iterable[Route]:
    hello = Response.json({{"message": settings.message}})

    async def get_hello(request: Request) -> Response:
        return hello

    yield Route("/{name}/hello", get_hello, name="hello", summary="a canned greeting")
''',
    "tests/test_{name}.py": '''\
import asyncio

import httpx

import simulator_{name}
from simulator.app import create_app
from simulator.host import PluginHost


def get(path: str) -> httpx.Response:
    """One request to the plugin, in process: no server, no port."""
    app = create_app(PluginHost.from_plugins({{"{name}": simulator_{name}}}))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(call())


def test_hello_answers_with_the_configured_message(monkeypatch):
    monkeypatch.setenv("{prefix}MESSAGE", "hi")
    response = get("/{name}/hello")
    assert response.status_code == 200
    assert response.json() == {{"message": "hi"}}
''',
    "README.md": """\
# simulator-{dist}

A fake `{name}` API for api-simulator.

    pip install -e .            # the simulator discovers it through its entry point
    SIMULATOR_PLUGINS=health,{name} simulator serve
    curl localhost:9123/{name}/hello

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
    values = {"name": name, "dist": name.replace("_", "-"), "prefix": name.upper() + "_"}
    for template_path, template in _FILES.items():
        path = root / template_path.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root
