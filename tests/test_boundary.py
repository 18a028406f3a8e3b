"""The plugin boundary: the core imports no plugin, and plugins import only the public surface."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import simulator
from simulator.scaffold import scaffold

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"simulator", "simulator.testing"}
GUIDE = (ROOT / "docs" / "writing-plugins.md").read_text()


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports (``from x import y`` gives ``x``), with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def test_the_core_imports_no_plugin() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "simulator").rglob("*.py"))
        for line, module in imports(path)
        if module == "plugins" or module.startswith("plugins.")
    ]
    assert found == []


def plugin_sources(tmp_path: Path) -> list[Path]:
    """The built-in plugins, the example plugin and a freshly scaffolded one."""
    scaffolded = scaffold("probe", tmp_path)
    return sorted(
        [
            *(ROOT / "plugins").rglob("*.py"),
            *(ROOT / "examples").rglob("*.py"),
            *scaffolded.rglob("*.py"),
        ]
    )


def test_plugins_use_only_the_public_surface(tmp_path: Path) -> None:
    found = [
        f"{path}:{line} imports {module}"
        for path in plugin_sources(tmp_path)
        for line, module in imports(path)
        if (module == "simulator" or module.startswith("simulator.")) and module not in PUBLIC
    ]
    assert found == []


def test_the_surface_test_sees_a_private_import(tmp_path: Path) -> None:
    """The rule above is not vacuous: a private import in a plugin file would be found."""
    probe = tmp_path / "probe.py"
    probe.write_text("from simulator.host import PluginHost\nimport simulator.records\n")
    assert [module for _, module in imports(probe)] == ["simulator.host", "simulator.records"]


@pytest.mark.parametrize("name", simulator.__all__)
def test_every_public_name_exists_and_is_in_the_author_guide(name: str) -> None:
    assert hasattr(simulator, name)
    assert f"`{name}`" in GUIDE, f"{name} is exported but not in docs/writing-plugins.md"
