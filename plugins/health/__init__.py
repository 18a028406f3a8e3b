"""``health``: the load balancer's health check, exactly as the original fake answered it."""

from plugins.health.routes import router
from simulator import Router, hookimpl


@hookimpl
def simulator_register_routes() -> Router:
    return router()
