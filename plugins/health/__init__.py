"""``health``: the load balancer's health check, exactly as the original fake answered it."""

from collections.abc import Iterable

from plugins.health.routes import routes
from simulator import Route, hookimpl


@hookimpl
def simulator_register_routes() -> Iterable[Route]:
    return routes()
