"""One walker for the placeholders in scenario JSON: every string of a document, nested anywhere; and the
check that a scenario document can be served (bounded nesting, numbers a response can carry)."""

from __future__ import annotations

from typing import Any, Final

MAX_DEPTH: Final = 64  # the spec's bodies nest 6 levels; orjson cannot write more than 254
_INT_RANGE: Final = range(-(2**63), 2**64)  # what orjson writes


def check_document(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why a JSON document cannot be served, or None: nested deeper than ``max_depth`` levels, or holding
    an integer outside 64 bits. Iterative, so any depth is checked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, int) and not isinstance(item, bool) and item not in _INT_RANGE:
            return f"the integer {str(item)[:30]} does not fit in 64 bits"
    return None


def replace_strings(value: Any, old: str, new: str) -> Any:
    """A copy of a JSON value with ``old`` replaced by ``new`` in every string (keys are left alone)."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [replace_strings(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: replace_strings(item, old, new) for key, item in value.items()}
    return value
