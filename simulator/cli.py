"""The ``simulator`` command: serve, list plugins, scaffold a new plugin."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from simulator.errors import StartupError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulator", description="A plugin-based multi-API simulator.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the server (settings come from SIMULATOR_* and plugin variables)"
    )
    serve.add_argument("--host", help="overrides SIMULATOR_HOST")
    serve.add_argument("--port", type=int, help="overrides SIMULATOR_PORT")
    serve.add_argument("--workers", type=int, help="overrides SIMULATOR_WORKERS")

    sub.add_parser("plugins", help="list installed plugins, whether enabled, their routes and variables")

    new = sub.add_parser("new-plugin", help="scaffold a plugin package with a route, settings and a test")
    new.add_argument("name", help="plugin name: lower case letters, digits and _")
    new.add_argument("dir", nargs="?", default=".", help="parent folder (default: the current one)")

    targets = sub.add_parser(
        "targets", help="print load-test targets for vegeta (patient checks or token posts)"
    )
    targets.add_argument("--base-url", default="http://localhost:9123", help="default http://localhost:9123")
    targets.add_argument(
        "--kind",
        choices=("patients", "synthetic", "token"),
        default="patients",
        help="patients: the 18 known test patients (default); synthetic: N valid NHS numbers; token: N POSTs",
    )
    targets.add_argument("-n", "--count", type=int, default=1000, help="targets for synthetic/token (1000)")
    targets.add_argument("--seed", type=int, help="makes synthetic numbers reproducible")
    targets.add_argument("--api-key", default="load-test-app", help="iss/sub of token assertions")
    targets.add_argument("--kid", default="load-test-1", help="kid header of token assertions")
    targets.add_argument("--private-key", type=Path, help="PEM key to sign with (strict validation)")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "plugins":
            return _plugins()
        if args.command == "targets":
            return _targets(args)
        return _new_plugin(args.name, Path(args.dir))
    except StartupError as exc:
        print(f"simulator: error: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn

    from simulator import workers
    from simulator.app import serve_app
    from simulator.host import PluginHost
    from simulator.logs import log_config
    from simulator.protocol import CoalescingHttpToolsProtocol
    from simulator.settings import CoreSettings, load_settings

    core = load_settings(CoreSettings)
    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k)) is not None}
    if overrides:
        core = CoreSettings.model_validate(core.model_dump() | overrides)
    # Built here even with several workers, so a bad setting fails once, in one line, before listening.
    host = PluginHost.from_environment(core)
    options = {
        "loop": "uvloop",
        "http": CoalescingHttpToolsProtocol,
        "access_log": False,
        "log_config": log_config(core.log_level, core.log_format),
        "timeout_graceful_shutdown": core.graceful_timeout,
        "server_header": False,
        # uvicorn's proxy-headers middleware rewrites the client address and scheme from X-Forwarded-* on
        # every request; nothing here uses the client address, and apim_oauth reads X-Forwarded-Proto itself.
        "proxy_headers": False,
    }
    sockets = workers.listen(core.host, core.port, core.workers)
    logging.config.dictConfig(options["log_config"])  # type: ignore[arg-type]
    port = sockets[0].getsockname()[1]
    logging.getLogger("simulator").info(
        "listening on http://%s:%d with %d worker process(es)", core.host, port, core.workers
    )
    if core.workers > 1:
        return workers.supervise(sockets, options, core.graceful_timeout)
    signal.signal(signal.SIGTERM, workers.exit_cleanly)
    uvicorn.Server(uvicorn.Config(serve_app(host), **options)).run(sockets=sockets)  # type: ignore[arg-type]
    return 0


def _plugins() -> int:
    from simulator.host import PluginHost, discover, select
    from simulator.settings import CoreSettings, env_name, load_settings

    core = load_settings(CoreSettings)
    available = discover()
    enabled = {p.name for p in select(available, core.plugins)}
    host = PluginHost.from_environment(core.model_copy(update={"plugins": None}))
    rows = [("PLUGIN", "VERSION", "ENABLED", "ROUTES", "ENV VARS")]
    for name, plugin in sorted(host.plugins.items()):
        routes = ", ".join(f"{'|'.join(r.methods)} {r.path}" for r in plugin.routes) or "-"
        settings = plugin.settings
        env = ", ".join(env_name(type(settings), f) for f in type(settings).model_fields) if settings else "-"
        rows.append((name, plugin.version, "yes" if name in enabled else "no", routes, env))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def _targets(args: argparse.Namespace) -> int:
    import random

    from simulator import targets

    if args.count < 1:
        raise StartupError(f"--count must be at least 1, not {args.count}")
    base = args.base_url.rstrip("/")
    if args.kind == "token":
        pem = args.private_key.read_bytes() if args.private_key else None
        lines = targets.token_targets(base, args.count, args.api_key, args.kid, pem)
    else:
        numbers = (
            list(targets.KNOWN_PATIENTS)
            if args.kind == "patients"
            else list(targets.synthetic_nhs_numbers(args.count, random.Random(args.seed)))
        )
        lines = targets.patient_targets(base, numbers)
    try:
        for line in lines:
            print(line)
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the interpreter's flush at exit
    return 0


def _new_plugin(name: str, parent: Path) -> int:
    from simulator.scaffold import scaffold

    created = scaffold(name, parent)
    print(f"created {created}")
    print(f"next: pip install -e {created} && pytest {created} && SIMULATOR_PLUGINS={name} simulator serve")
    return 0
