"""The simulator's built-in fake APIs, each a plugin declared in the ``simulator`` entry-point group."""
