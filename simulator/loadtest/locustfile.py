"""locustfile: the simulator's load-test targets, written in by ``simulator targets --format locust``.

    simulator targets --format locust --base-url http://localhost:9123 > locustfile.py
    locust --headless -u 10 -r 10 -t 30s --only-summary        # without --headless: the web UI
    locust --headless -u 10 -r 10 -t 30s --host http://other-host:9123

Each user sends the next target of the list its process shares, as fast as the answers come (set
``wait_time`` below to pace it), so no two users send the same target within a round (a token target's jti
is accepted once: generate at least as many token targets as the test sends; with ``--processes`` or
distributed workers, each process goes through the whole list). Redirects are not followed (a sign-in's 302
is its answer); answers of 400 and above are failures. Requests are grouped by route (their name).
"""

from __future__ import annotations

import itertools

from locust import FastHttpUser, task

BASE_URL = "http://localhost:9123"

# (method, path, name, headers, body)
TARGETS: list[tuple[str, str, str, dict[str, str], str]] = [
    # simulator targets: the targets go here
]

if not TARGETS:
    raise SystemExit("locustfile.py: no targets (write them in with `simulator targets --format locust`)")

_turn = itertools.count()


class SimulatorTargets(FastHttpUser):
    host = BASE_URL
    # wait_time = constant_throughput(1)  # at most one request a second per user (from locust import ...)

    @task
    def next_target(self) -> None:
        method, path, name, headers, body = TARGETS[next(_turn) % len(TARGETS)]
        self.client.request(
            method, path, name=name, headers=headers, data=body or None, allow_redirects=False
        )
