"""The platform's per-app quota: N requests per one-minute window that starts at its first request."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

WINDOW_SECONDS = 60.0
# Past this many apps, windows that have ended are swept out, so memory stays bounded by the active apps.
_SWEEP_AT = 10_000


class RateLimiter:
    """``hit(app)`` counts a request: None while under quota, else the window's end in epoch ms."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._windows: dict[Hashable, list[float]] = {}
        self._sweep_at = _SWEEP_AT

    def hit(self, app: Hashable) -> int | None:
        now = self._clock()
        window = self._windows.get(app)
        if window is None or window[0] <= now:
            if window is None and len(self._windows) >= self._sweep_at:
                self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
                # Doubling keeps the sweeps amortised O(1) even when most apps are still active.
                self._sweep_at = max(_SWEEP_AT, 2 * len(self._windows))
            self._windows[app] = [now + WINDOW_SECONDS, 1.0]
            return None
        window[1] += 1
        if window[1] > self.limit:
            return int(window[0] * 1000)
        return None
