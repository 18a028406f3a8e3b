"""The load generators' scripts that ``simulator targets --format wrk|k6|locust`` prints with the targets
written in: ``wrk.lua``, ``k6.js`` and ``locustfile.py``. Shipped in the package (and so in the image), each
runs as it is too, with no targets (it says so and stops)."""
