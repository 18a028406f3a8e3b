"""What an unauthenticated client can make a real ``simulator serve`` keep, through ``POST /oauth2/token``.

Each test measures the serving process's resident set (``VmRSS``) before and after a burst of requests that
each carry something large and distinct where the endpoint remembers things: the JWT header (the decode
cache), the ``jti`` (the replay cache) and ``sub`` (the quota windows). Every body stays under the default
``SIMULATOR_MAX_BODY_BYTES`` (1 MiB), so these are the requests an attacker can send to a stock server.

Measured on the stores as they were, bounded by entry counts only (``pytest -s`` prints the figures): 5
headers grew the RSS by 89.8 MiB (~18 MiB each: the header cache kept every one, decoded), 40 ``jti``s by
28.4 MiB and 40 apps by 39.2 MiB (their quota windows and ``jti`` keys held the names). With the stores
bounded in bytes (headers over 1,024 characters not cached, ``jti``s and quota windows keyed by digests):
+1.0, +0.0 and +0.0 MiB.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from tests.plugins.apim_oauth.apim_support import JWT_BEARER
from tests.procs import rss_bytes

pytestmark = [pytest.mark.reliability, pytest.mark.server]

Serve = Callable[..., str]
MiB = 1 << 20
# simulator.settings.CoreSettings.max_body_bytes' default: every request below must fit under it.
DEFAULT_MAX_BODY_BYTES = 1 << 20
HEADER_CHARS = 900_000
JTI_CHARS = 700_000
# iss and sub both carry the app's name: two 350 KB copies keep the body under the default limit.
APP_CHARS = 350_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: bytes, claims: bytes) -> str:
    # Structural checks and the stores all run before any signature check: the signature can be anything.
    return f"{_b64(header)}.{_b64(claims)}.c2lnbmF0dXJl"


def _claims(app: str = "attacker", jti: str | None = None) -> bytes:
    exp = int(time.time()) + 120
    return orjson.dumps({"iss": app, "sub": app, "aud": "x", "jti": jti or str(uuid.uuid4()), "exp": exp})


def big_header(tag: int) -> bytes:
    """A JWT header of about HEADER_CHARS once encoded, that decodes to as many Python objects as it can:
    an array of empty objects (~70 bytes of heap for each three bytes of JSON)."""
    head = b'{"alg":"RS512","typ":"JWT","kid":"k-%d","x":[' % tag
    count = (HEADER_CHARS * 3 // 4 - len(head) - 3) // 3
    return head + b"{}," * count + b"{}]}"


def form_body(client_assertion: str) -> bytes:
    fields = ("grant_type=client_credentials", f"client_assertion_type={JWT_BEARER}")
    encoded = "&".join((*fields, f"client_assertion={client_assertion}")).encode()
    assert len(encoded) <= DEFAULT_MAX_BODY_BYTES, len(encoded)  # what a stock server accepts
    return encoded


@pytest.fixture
def server(serve: Serve) -> Iterator[Callable[..., tuple[httpx.Client, int]]]:
    """``server(**env)``: a client of a one-worker apim_oauth server, and the pid that answers it."""
    clients: list[httpx.Client] = []

    def start(**env: str) -> tuple[httpx.Client, int]:
        base = serve({"SIMULATOR_PLUGINS": "apim_oauth", "SIMULATOR_WORKERS": "1"} | env)
        client = httpx.Client(base_url=base, timeout=30)
        clients.append(client)
        client.post("/oauth2/token")  # a journal entry names the process that served it
        entries = client.get("/_simulator/requests", params={"limit": 1}).json()["requests"]
        return client, int(entries[0]["worker"])

    yield start
    for client in clients:
        client.close()


def post(client: httpx.Client, body: bytes) -> httpx.Response:
    response = client.post(
        "/oauth2/token", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code < 500, response.text
    return response


def grown(
    client: httpx.Client, pid: int, bodies: Iterator[bytes], warm_up: list[bytes]
) -> tuple[int, int, int]:
    """(RSS before, RSS after, requests sent). The ``warm_up`` requests (two, of the same kind) go first: the
    allocator settles at what such a request needs while it runs after about two of them (measured: RSS then
    stays within ~3 MiB over 30 more), so the growth measured is what the server keeps."""
    for body in warm_up:
        post(client, body)
    before = rss_bytes(pid)
    sent = 0
    for body in bodies:
        post(client, body)
        sent += 1
    return before, rss_bytes(pid), sent


def report(what: str, before: int, after: int, sent: int) -> int:
    growth = after - before
    figures = f"{before / MiB:.1f} MiB -> {after / MiB:.1f} MiB ({growth / MiB:+.1f} MiB, {sent} requests)"
    print(f"\n{what}: RSS {figures}")
    return growth


def test_distinct_huge_jwt_headers_are_not_kept(server: Callable[..., tuple[httpx.Client, int]]) -> None:
    client, pid = server()
    bodies = [form_body(_jwt(big_header(tag), _claims())) for tag in range(7)]
    before, after, sent = grown(client, pid, iter(bodies[2:]), bodies[:2])
    growth = report("5 distinct 0.9 MB JWT headers", before, after, sent)
    assert growth < 25 * MiB, growth


def test_distinct_huge_jtis_are_not_kept(server: Callable[..., tuple[httpx.Client, int]]) -> None:
    # Strict, and the app unknown: the jti is recorded before the API key is checked (as on the platform),
    # so a client with no key at all reaches the replay cache.
    client, pid = server(APIM_VALIDATION="strict", APIM_API_KEYS="the-only-app")
    header = orjson.dumps({"alg": "RS512", "typ": "JWT", "kid": "k"})

    def body(index: int) -> bytes:
        jti = f"{index:08d}-" + "j" * (JTI_CHARS - 9)
        return form_body(_jwt(header, _claims(jti=jti)))

    before, after, sent = grown(client, pid, (body(i) for i in range(2, 42)), [body(0), body(1)])
    assert (
        post(client, body(1)).json()["error_description"] == "Non-unique 'jti' claim in client_assertion JWT"
    )
    growth = report("40 distinct 700 KB jtis (strict, unknown app)", before, after, sent)
    assert growth < 20 * MiB, growth


def test_distinct_huge_apps_are_not_kept_by_the_quota(
    server: Callable[..., tuple[httpx.Client, int]],
) -> None:
    # Structural: any app gets a quota window, keyed by its sub (and its jti is keyed by sub too).
    client, pid = server(APIM_RATE_LIMIT_PER_MINUTE="300")
    header = orjson.dumps({"alg": "RS512", "typ": "JWT", "kid": "k"})

    def body(index: int) -> bytes:
        return form_body(_jwt(header, _claims(app=f"{index:08d}-" + "a" * (APP_CHARS - 9))))

    before, after, sent = grown(client, pid, (body(i) for i in range(2, 42)), [body(0), body(1)])
    growth = report("40 distinct 350 KB apps (quota on)", before, after, sent)
    assert growth < 20 * MiB, growth
