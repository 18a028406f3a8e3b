"""One walker for the placeholders in scenario JSON: every string of a document, nested anywhere."""

from __future__ import annotations

from typing import Any


def replace_strings(value: Any, old: str, new: str) -> Any:
    """A copy of a JSON value with ``old`` replaced by ``new`` in every string (keys are left alone)."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [replace_strings(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: replace_strings(item, old, new) for key, item in value.items()}
    return value
