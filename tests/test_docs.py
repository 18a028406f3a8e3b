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
