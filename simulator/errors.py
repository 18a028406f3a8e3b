"""The one exception type that stops start-up with a single readable line."""


class StartupError(Exception):
    """A configuration or plugin problem found before the server listens; ``str()`` is the whole message."""
