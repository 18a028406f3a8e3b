"""The decorator Router: handlers FastAPI users write, compiled to the lean path, typed parameters checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator import ParameterProblem, Request, Response, Router
from simulator.testing import SimulatorClient


def served(router: Router) -> SimulatorClient:
    class Plugin:
        from simulator import hookimpl

        @hookimpl
        def simulator_register_routes(self) -> Router:
            return router

    return SimulatorClient({"p": Plugin()})


@pytest.fixture
def shop() -> Iterator[SimulatorClient]:
    router = Router(prefix="/shop")

    @router.get("/items/{item_id}")
    async def item(request: Request, item_id: int, detail: bool = False, tag: str | None = None) -> Response:
        """One item."""
        return Response.json({"id": item_id, "detail": detail, "tag": tag})

    @router.get("/search")
    def search(q: str, limit: int = 10, sort: list[str] | None = None, ratio: float = 1.0) -> Response:
        return Response.json({"q": q, "limit": limit, "sort": sort, "ratio": ratio})

    @router.post("/orders")
    async def order(request: Request) -> Response:
        return Response.json({"form": dict(await request.form()), "method": request.method}, status=201)

    with served(router) as client:
        yield client


def test_path_and_query_parameters_are_converted_by_annotation(shop: SimulatorClient) -> None:
    assert shop.get("/shop/items/7?detail=yes&tag=red").json() == {"id": 7, "detail": True, "tag": "red"}
    assert shop.get("/shop/items/7").json() == {"id": 7, "detail": False, "tag": None}
    assert shop.get("/shop/search?q=tea&sort=a&sort=b&ratio=0.5").json() == {
        "q": "tea",
        "limit": 10,
        "sort": ["a", "b"],
        "ratio": 0.5,
    }
    assert shop.post("/shop/orders", data={"x": "1"}).json() == {"form": {"x": "1"}, "method": "POST"}


@pytest.mark.parametrize(
    ("path", "loc", "message", "value"),
    [
        ("/shop/items/seven", ["path", "item_id"], "should be a whole number", "seven"),
        ("/shop/items/²", ["path", "item_id"], "should be a whole number", "²"),
        ("/shop/items/" + "9" * 5000, ["path", "item_id"], "should be a whole number", "9" * 5000),
        ("/shop/items/1?detail=maybe", ["query", "detail"], "should be true or false", "maybe"),
        ("/shop/search", ["query", "q"], "field required", None),
        ("/shop/search?q=x&limit=1.5", ["query", "limit"], "should be a whole number", "1.5"),
        ("/shop/search?q=x&ratio=nan", ["query", "ratio"], "should be a finite number", "nan"),
        ("/shop/search?q=x&ratio=abc", ["query", "ratio"], "should be a number", "abc"),
    ],
)
def test_a_value_that_does_not_convert_gets_fastapis_422(
    shop: SimulatorClient, path: str, loc: list[str], message: str, value: str | None
) -> None:
    response = shop.get(path)
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": loc, "msg": message, "input": value}]}


def test_a_plugin_answers_refused_parameters_in_its_own_shape() -> None:
    def invalid(request: Request, problem: ParameterProblem) -> Response:
        return Response.json({"error": f"{problem.location}.{problem.name}: {problem.message}"}, status=400)

    router = Router(invalid=invalid)

    @router.get("/n/{n}")
    async def number(n: int) -> Response:
        return Response.json(n)

    with served(router) as client:
        response = client.get("/n/x")
    assert (response.status_code, response.json()) == (400, {"error": "path.n: should be a whole number"})


def test_route_records_carry_name_summary_description_parameters_and_delay() -> None:
    router = Router(prefix="/api", delayed=False)

    @router.get("/a/{x}", name="alpha", summary="given")
    async def a(request: Request, x: str) -> Response:
        """From the docstring.

        Longer text.
        """
        return Response.text(x)

    @router.any("/b", delayed=True)
    async def b(request: Request) -> Response:
        """Just b."""
        return Response.text("b")

    first, second = router
    assert (first.path, first.name, first.summary, first.description, first.delayed) == (
        "/api/a/{x}",
        "alpha",
        "given",
        "From the docstring.\n\nLonger text.",
        False,
    )
    assert [(p.name, p.location, p.type, p.required) for p in first.parameters] == [
        ("x", "path", "string", True)
    ]
    assert (second.name, second.summary, second.methods, second.delayed) == ("b", "Just b.", ("*",), True)
    # A handler that takes only the request is the handler: no adapter on the hot path.
    assert second.handler is b
    assert len(router) == 2


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def h(request, *args): ...", "parameter 'args' must be a plain or keyword parameter"),
        ("def h(request, when: dict): ...", "parameter 'when' is annotated"),
        ("def h(request, x: int | str): ...", "may be one type or that type | None"),
        ("def h(x: list[str]): ...", "path parameter 'x' must be one value"),
        ("def h(request, y: int): ...", "path parameter(s) x have no function parameter"),
    ],
)
def test_a_handler_the_router_cannot_serve_is_refused_when_decorated(source: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")):
        Router().get("/p/{x}")(namespace["h"])  # type: ignore[arg-type]


def test_a_bad_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        Router(prefix="api/")
