"""Request and Response: str headers, first-value mappings with every value kept, JSON and forms."""

from __future__ import annotations

from typing import Any

import pytest

from simulator import InvalidBody, Params, Request, Response
from simulator.http import parse_form


def request(
    body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b""
) -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"method": "POST", "path": "/x", "query_string": query, "headers": headers or []}
    return Request(scope, receive, {})


def test_params_give_the_first_value_and_keep_every_one() -> None:
    params = Params([("a", "1"), ("b", "2"), ("a", "3")])
    assert params["a"] == "1"
    assert params.get("missing") is None
    assert params.getlist("a") == ["1", "3"]
    assert params.getlist("missing") == []
    assert params.pairs == [("a", "1"), ("b", "2"), ("a", "3")]
    assert dict(params) == {"a": "1", "b": "2"}


def test_headers_are_lower_case_strings_first_value_and_every_value_on_request() -> None:
    r = request(headers=[(b"X-Request-ID", b"abc"), (b"accept", b"a"), (b"Accept", b"b")])
    assert r.headers == {"x-request-id": "abc", "accept": "a"}
    assert r.header_values("ACCEPT") == ["a", "b"]
    assert r.header_values("missing") == []


async def test_query_headers_json_and_form_of_a_request() -> None:
    r = request(b'{"a": [1, 2]}', [(b"x-token", b"t")], b"q=1&q=2&blank=")
    assert r.query["q"] == "1"
    assert r.query.getlist("q") == ["1", "2"]
    assert r.query["blank"] == ""
    assert r.headers["x-token"] == "t"
    assert await r.json() == {"a": [1, 2]}
    with pytest.raises(InvalidBody, match="the body is not JSON"):
        await request(b"{nope").json()


async def test_forms_decode_escapes_plus_repeats_and_garbage() -> None:
    form = await request(b"grant_type=a%3Ab&x=one+two&x=three&&=empty-name&\xff=v").form()
    assert form["grant_type"] == "a:b"
    assert form["x"] == "one two"
    assert form.getlist("x") == ["one two", "three"]
    assert form[""] == "empty-name"
    assert form["\ufffd"] == "v"
    assert parse_form(b"") == {}


def test_responses_take_str_headers_and_compute_length() -> None:
    response = Response.json({"a": 1}, status=201, headers={"X-Trace": "t"})
    assert response.status == 201
    assert response.raw_headers == (
        (b"content-type", b"application/json"),
        (b"content-length", b"7"),
        (b"x-trace", b"t"),
    )
    assert response.headers == {"content-type": "application/json", "content-length": "7", "x-trace": "t"}
    assert Response.text("é").raw_headers[:2] == (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"2"),
    )
    more = response.with_headers({"Retry-After": "5"})
    assert more.raw_headers[-1] == (b"retry-after", b"5")
    assert more.body is response.body
    assert response.with_headers({}) is response
