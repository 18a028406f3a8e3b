"""``GET|HEAD /health`` -> 200 ``healthy`` (text/plain). The ALB target group matches on it."""

from collections.abc import Iterable

from simulator import Request, Response, Route

# The original fake's body and content type, byte for byte: health checks may compare them.
HEALTHY = Response.build(b"healthy", content_type=b"text/plain")


async def health(request: Request) -> Response:
    return HEALTHY


def routes() -> Iterable[Route]:
    # Never delayed: a delayed health check would make the load balancer drain a healthy task.
    yield Route(
        "/health", health, methods=("GET", "HEAD"), name="health", summary="200 healthy", delayed=False
    )
