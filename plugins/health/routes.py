"""``GET|HEAD /health`` -> 200 ``healthy`` (text/plain). The ALB target group matches on it."""

from simulator import Request, Response, Router

# The original fake's body and content type, byte for byte: health checks may compare them.
HEALTHY = Response.build(b"healthy", content_type="text/plain")


def router() -> Router:
    # Never delayed: a delayed health check would make the load balancer drain a healthy task.
    routes = Router(delayed=False)

    @routes.get("/health", summary="200 healthy")
    async def health(request: Request) -> Response:
        return HEALTHY

    return routes
