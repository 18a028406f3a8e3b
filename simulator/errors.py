"""The one exception type that stops start-up with a single readable line."""

from __future__ import annotations


class StartupError(Exception):
    """A configuration or plugin problem found before the server listens; ``str()`` is the whole message.

    Raise it from a hook (or a settings validator's caller) with a message that names what is wrong; the host
    records which plugin it came from in ``plugin`` (``None`` for the core's own problems).
    """

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
