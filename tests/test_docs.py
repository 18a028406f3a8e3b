"""Every hook is documented: in its docstring (summary, returns, example) and in the author guide."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from simulator import hookspecs

HOOKS = [
    name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("simulator_")
]
GUIDE = (Path(__file__).parents[1] / "docs" / "writing-plugins.md").read_text()


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 4


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_in_the_author_guide(name: str) -> None:
    assert f"### `{name}(" in GUIDE


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_docstring_has_returns_and_example(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Returns:" in doc
    assert "Example:" in doc
    assert inspect.signature(getattr(hookspecs, name)).return_annotation != inspect.Signature.empty


# -- the reference: every variable, core route and metric name is documented ---------------------------------

ROOT = Path(__file__).parents[1]
REFERENCE = "\n".join(
    path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
)


def _settings_variables() -> list[str]:
    from plugins.apim_oauth.settings import ApimSettings
    from plugins.eligibility.settings import EligibilitySettings
    from plugins.nhs_login.settings import LoginSettings
    from simulator.settings import CoreSettings

    found = [f"SIMULATOR_{name.upper()}" for name in CoreSettings.model_fields]
    for cls in (ApimSettings, EligibilitySettings, LoginSettings):
        prefix = cls.model_config.get("env_prefix", "")
        found += [f"{prefix}{name.upper()}" for name in cls.model_fields]
    return found


@pytest.mark.parametrize("variable", _settings_variables())
def test_every_variable_is_documented(variable: str) -> None:
    assert f"`{variable}`" in REFERENCE, f"{variable} is in no table of README.md or docs/"


def _core_routes() -> list[str]:
    from simulator.testing import SimulatorClient

    with SimulatorClient({}) as client:  # no plugin: the OpenAPI document lists the core's routes only
        paths = client.get("/_simulator/openapi.json").json()["paths"]
    return sorted({"/_simulator/openapi.json", "/_simulator/docs", *paths})


@pytest.mark.parametrize("path", _core_routes())
def test_every_core_route_is_in_the_readme(path: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f" {path}`" in readme or f" {path}?" in readme, f"{path} is not in the README's core routes"


def test_every_metric_name_is_documented() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from simulator.testing import SimulatorClient

    with SimulatorClient({}) as client:
        text = client.get("/_simulator/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert len(names) >= 12
    reference = (ROOT / "docs" / "observability.md").read_text()
    for name in names:
        kind = "_total" if f"{name}_total" in text else ""
        assert f"`{name}{kind}`" in reference, f"{name}{kind} is not in docs/observability.md"
