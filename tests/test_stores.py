"""ExpiringSet: keys live for their time-to-live, and the set stays within its entries and its bytes."""

from __future__ import annotations

import sys

from simulator import ExpiringSet
from simulator.stores import ENTRY_OVERHEAD_BYTES


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_expire_after_their_ttl() -> None:
    clock = Clock()
    keys = ExpiringSet(ttl=30, max_entries=10, max_bytes=1 << 20, clock=clock)
    keys.add("a")
    keys.add("b", ttl=5)
    assert "a" in keys
    assert "b" in keys
    clock.now += 6
    assert "b" not in keys
    assert "a" in keys
    clock.now += 25
    assert "a" not in keys
    assert len(keys) == 0
    assert keys.bytes == 0


def test_past_max_entries_the_oldest_go_first() -> None:
    keys = ExpiringSet(ttl=30, max_entries=3, max_bytes=1 << 20, clock=Clock())
    for key in "abcd":
        keys.add(key)
    assert len(keys) == 3
    assert "a" not in keys
    assert "d" in keys
    keys.add("b")  # re-adding makes it the newest
    keys.add("e")
    assert "c" not in keys
    assert "b" in keys


def test_the_byte_budget_bounds_what_large_keys_can_keep() -> None:
    budget = 1 << 20
    keys = ExpiringSet(ttl=3600, max_entries=1_000_000, max_bytes=budget, clock=Clock())
    big = "x" * 700_000  # a client-chosen key, as a jti can be
    for i in range(40):
        keys.add(f"{i}{big}")
    assert keys.bytes <= budget
    assert len(keys) == 1
    assert keys.bytes == sys.getsizeof(f"39{big}") + ENTRY_OVERHEAD_BYTES
    assert keys.bytes == sum(sys.getsizeof(k) + ENTRY_OVERHEAD_BYTES for k in keys._entries)
    keys.add("x" * (budget + 1))  # larger than the whole budget: not kept at all
    assert len(keys) == 0
    assert keys.bytes == 0


def test_non_string_keys_are_simply_absent() -> None:
    keys = ExpiringSet(ttl=1, max_entries=1, max_bytes=1000, clock=Clock())
    assert 3 not in keys
