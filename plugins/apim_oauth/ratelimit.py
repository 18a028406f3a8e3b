"""The platform's per-app quota: N requests per one-minute window that starts at its first request."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from plugins.apim_oauth.validation import key_digest

WINDOW_SECONDS = 60.0
# At most this many apps' windows are kept. In structural mode any client names any app (its `sub`), so the
# windows are bounded by count here and by size through their keys; a real deployment has a few apps.
MAX_APPS: Final = 100_000


class RateLimiter:
    """``hit(app)`` counts a request: None while under quota, else the window's end in epoch ms.

    Memory: a window is keyed by a 16-byte digest of the app's name, however long the name (a ``sub`` is
    whatever the client sent), and holds its end and count, about 260 bytes in all (the dict's slot and
    links, a 16-byte ``bytes``, a two-item list of floats). One request keeps at most one window; at most
    ``max_apps`` are kept (about 26 MB at the default 100,000). Every window lasts ``WINDOW_SECONDS`` from
    when it is made, so the order they are made in is the order they end in: ended windows are dropped from
    the front as new ones are made, and past ``max_apps`` the oldest live one goes too (that app's count
    starts again: the price of bounded memory, and only ever in the client's favour).
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.time, max_apps: int = MAX_APPS) -> None:
        self.limit = limit
        self._clock = clock
        self._max_apps = max_apps
        # digest of the app -> [end (epoch seconds), requests counted]
        self._windows: OrderedDict[bytes, list[float]] = OrderedDict()

    def hit(self, app: str) -> int | None:
        now = self._clock()
        key = key_digest(app)
        windows = self._windows
        window = windows.get(key)
        if window is not None and window[0] > now:
            window[1] += 1
            return int(window[0] * 1000) if window[1] > self.limit else None
        if window is not None:
            del windows[key]  # ended: the new window goes to the back, in end order
        windows[key] = [now + WINDOW_SECONDS, 1.0]
        while len(windows) > self._max_apps or next(iter(windows.values()))[0] <= now:
            windows.popitem(last=False)
        return None

    def __len__(self) -> int:
        return len(self._windows)
