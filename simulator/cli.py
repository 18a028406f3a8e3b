"""The ``simulator`` command: serve, list plugins, print load-test targets, steer a running simulator
(``ctl``), scaffold a new plugin."""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.errors import StartupError

if TYPE_CHECKING:
    from simulator.host import PluginHost
    from simulator.settings import CoreSettings
    from simulator.targets import Targets


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        # `targets` takes options from the plugins that offer target sets: load them before parsing.
        host = _targets_host() if args_list[:1] == ["targets"] else None
        args = _parser(host).parse_args(args_list)
        if args.command == "serve":
            return _serve(args)
        if args.command == "plugins":
            return _plugins()
        if args.command == "targets":
            assert host is not None
            return _targets(host, args)
        if args.command == "ctl":
            return _ctl(args)
        return _new_plugin(args.name, Path(args.dir))
    except StartupError as exc:
        print(f"simulator: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2


_MAX_ERROR_CHARACTERS = 2000


def _one_line(message: str) -> str:
    """A start-up error as exactly one line on standard error: whitespace collapsed, a runaway message cut."""
    line = " ".join(message.split()) or "start-up failed"
    if len(line) > _MAX_ERROR_CHARACTERS:
        line = line[: _MAX_ERROR_CHARACTERS - 3] + "..."
    return line


def _parser(host: PluginHost | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simulator", description="A plugin-based multi-API simulator.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the server (settings come from SIMULATOR_* and plugin variables)"
    )
    serve.add_argument("--host", help="overrides SIMULATOR_HOST")
    serve.add_argument("--port", type=int, help="overrides SIMULATOR_PORT")
    serve.add_argument("--workers", type=int, help="overrides SIMULATOR_WORKERS")

    sub.add_parser("plugins", help="list installed plugins: enabled or not (or broken), routes and variables")

    ctl = sub.add_parser(
        "ctl",
        help="read or change a running simulator's delays and faults (the control API)",
        description="Read or change a running simulator's delays and faults through /_simulator. Writes "
        "need the simulator's SIMULATOR_ADMIN_TOKEN: --token, or the same variable here.",
    )
    ctl.add_argument("--url", default="http://localhost:9123", help="the simulator (http://localhost:9123)")
    ctl.add_argument("--token", help="the admin token (default: $SIMULATOR_ADMIN_TOKEN)")
    ctl.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (10)")
    actions = ctl.add_subparsers(dest="action", required=True)
    for name, what in (("get-delay", "a plugin's delay in force"), ("get-faults", "a plugin's fault rules")):
        actions.add_parser(name, help=what).add_argument("plugin")
    set_delay = actions.add_parser(
        "set-delay", help="a plugin's delay: seconds (2.5) or a <PREFIX>_DELAY object ('{\"policy\": ...}')"
    )
    set_delay.add_argument("plugin")
    set_delay.add_argument("delay", help='seconds, or JSON such as \'{"policy": "fixed", "seconds": 2}\'')
    set_delay.add_argument("--route", help="only this route (its full name, e.g. eligibility.patient_check)")
    set_faults = actions.add_parser("set-faults", help="a plugin's fault rules: a JSON list ('[]' disarms)")
    set_faults.add_argument("plugin")
    set_faults.add_argument(
        "faults", help='JSON, e.g. \'[{"kind": "status", "status": 503, "probability": 0.05}]\''
    )
    actions.add_parser(
        "reset",
        help="every plugin's delay, faults and capacity back to the start-up configuration; no scenario",
    )

    new = sub.add_parser("new-plugin", help="scaffold a plugin package with a route, settings and a test")
    new.add_argument("name", help="plugin name: lower case letters, digits and _")
    new.add_argument("dir", nargs="?", default=".", help="parent folder (default: the current one)")

    from simulator.targets import FORMAT_HELP, FORMATS

    targets = sub.add_parser(
        "targets",
        help="print load-test targets offered by the enabled plugins, for vegeta, hey, wrk, k6 or locust",
        description="Print load-test targets offered by the enabled plugins (--list shows them), in a load\n"
        "generator's format: vegeta's target lines, or a hey, wrk, k6 or locust script with the targets in.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="formats:\n"
        + "".join(f"  {name:<14}{what}\n" for name, what in FORMAT_HELP.items())
        + "\nexamples (URL=http://localhost:9123; docs/load-testing.md has more):\n"
        "  simulator targets --base-url $URL | vegeta attack -rate=10/s -duration=30s | vegeta report\n"
        "  simulator targets --base-url $URL --format hey | sh -s -- -n 200 -c 10\n"
        "  simulator targets --base-url $URL --format wrk > targets.lua && wrk -d30s -s targets.lua $URL\n"
        "  simulator targets --base-url $URL --format k6 > targets.js && k6 run -d 30s -u 10 targets.js\n"
        "  simulator targets --base-url $URL --format locust > locustfile.py && locust --headless -t 30s\n"
        "  docker run --rm fake-api targets --base-url $URL --kind token --format locust > locustfile.py",
    )
    targets.add_argument("--list", action="store_true", help="list the target sets and exit")
    targets.add_argument(
        "--kind", metavar="NAME", help="the target set (full or short name); default: the plugins' default"
    )
    targets.add_argument(
        "--base-url",
        metavar="URL",
        default="http://localhost:9123",
        help="the simulator's origin (default http://localhost:9123); a path the targets' paths start with "
        "(the API's: $URL/eligibility-signposting-api) is dropped, any other path refused",
    )
    targets.add_argument(
        "-n", "--count", metavar="N", type=int, default=1000, help="targets for generated sets (1000)"
    )
    targets.add_argument("--seed", metavar="S", type=int, help="makes generated targets reproducible")
    targets.add_argument(
        "--format",
        choices=FORMATS,
        metavar="FORMAT",
        default="auto",
        help=f"{', '.join(FORMATS)}: see formats below (default auto)",
    )
    if host is not None:
        flags: dict[str, str] = {}
        for target_set in host.target_sets().values():
            for option in target_set.options:
                owner = flags.setdefault(option.flag, target_set.name)
                if owner != target_set.name:
                    if owner.partition(".")[0] != target_set.name.partition(".")[0]:
                        raise StartupError(
                            f"target option {option.flag} is declared by both {owner} and {target_set.name}"
                        )
                    continue
                targets.add_argument(
                    option.flag,
                    dest=f"option_{option.key}",
                    metavar=option.key.upper(),
                    default=option.default,
                    help=f"{option.help} ({target_set.name}; default {option.default})",
                )
    return parser


def _ctl(args: argparse.Namespace) -> int:
    import json
    import urllib.error
    import urllib.request

    base = args.url.rstrip("/")
    method, body = "GET", None
    if args.action in ("get-delay", "get-faults"):
        path = f"/_simulator/plugins/{args.plugin}/{args.action.removeprefix('get-')}"
    elif args.action == "reset":
        method, path = "POST", "/_simulator/reset"
    else:
        method, path = "PUT", f"/_simulator/plugins/{args.plugin}/{args.action.removeprefix('set-')}"
        text = args.delay if args.action == "set-delay" else args.faults
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            print(f"simulator ctl: {text[:60]!r} is not JSON: {exc}", file=sys.stderr)
            return 1
        if args.action == "set-delay":
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = {"policy": "fixed", "seconds": value}
            if isinstance(value, dict) and args.route:
                value = {**value, "route": args.route}
        body = json.dumps(value).encode()
    headers = {"content-type": "application/json"}
    token = args.token or os.environ.get("SIMULATOR_ADMIN_TOKEN")
    if token and method != "GET":
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
            detail = answer.get("detail", exc.reason) if isinstance(answer, dict) else exc.reason
        except ValueError:
            detail = exc.reason
        print(f"simulator ctl: {method} {path}: {exc.code} {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"simulator ctl: {base} did not answer: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn

    from simulator import workers
    from simulator.app import report_stop, serve_app
    from simulator.host import PluginHost
    from simulator.logs import log_config
    from simulator.settings import CoreSettings, load_settings

    core = load_settings(CoreSettings)
    asked = "max_connections" in core.model_fields_set  # before the overrides, which set every field
    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k)) is not None}
    if overrides:
        from pydantic import ValidationError

        try:
            core = CoreSettings.model_validate(core.model_dump() | overrides)
        except ValidationError as exc:
            error = exc.errors()[0]
            option = f"--{error['loc'][0]}" if error["loc"] else "an option"
            value = overrides.get(str(error["loc"][0]), "") if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            raise StartupError(f"invalid option {option} {str(value)[:100]!r}: {message}") from None
    # Built here even with several workers, so a bad setting fails once, in one line, before listening.
    host = PluginHost.from_environment(core)
    if core.scenario is not None:
        from simulator.app import SimulatorApp

        SimulatorApp(host)  # checks SIMULATOR_SCENARIO against the plugins, once, before listening
    config = log_config(core.log_level, core.log_format)
    logging.config.dictConfig(config)
    log = logging.getLogger("simulator")
    sockets = workers.listen(core.host, core.port, core.workers)  # a port in use stops start-up first
    connections = workers.raise_file_limit(core.max_connections, log, asked=asked)
    options = {
        "loop": "uvloop",
        "http": _http_protocol(log, core, connections),
        "ws": "none",
        "access_log": False,
        "log_config": config,
        "timeout_graceful_shutdown": core.graceful_timeout,
        "timeout_keep_alive": core.keepalive_timeout,
        "server_header": False,
        # uvicorn's proxy-headers middleware rewrites the client address and scheme from X-Forwarded-* on
        # every request; nothing here uses the client address, and apim_oauth reads X-Forwarded-Proto itself.
        "proxy_headers": False,
    }
    port = sockets[0].getsockname()[1]
    log.info("listening on http://%s:%d with %d worker process(es)", core.host, port, core.workers)
    if core.workers > 1:
        return workers.supervise(sockets, options, core.graceful_timeout)
    signal.signal(signal.SIGTERM, workers.exit_cleanly)
    signal.signal(signal.SIGINT, workers.exit_cleanly)  # Ctrl-C (make run) drains and exits 0 as well
    app = serve_app(host, connections=workers.connection_counter(options))
    try:
        uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=sockets)  # type: ignore[arg-type]
    finally:
        report_stop(app)
    return 0


def _http_protocol(log: logging.Logger, core: CoreSettings, connections: int) -> object:
    """This project's protocol when uvicorn's internals are the tested ones, else uvicorn's stock one."""
    try:
        from simulator import protocol
    except ImportError as exc:  # uvicorn moved the internals it builds on
        log.warning("%s: serving with uvicorn's stock httptools protocol", exc)
        return "httptools"
    limits = protocol.Limits(
        head_bytes=core.max_header_bytes,
        url_bytes=core.max_url_bytes,
        headers=core.max_headers,
        body_bytes=core.max_body_bytes,
        header_timeout=core.header_timeout,
        connections=connections,
    )
    return protocol.choose(log, limits)


def _plugins() -> int:
    from simulator.host import inventory
    from simulator.settings import CoreSettings, env_name, load_settings

    rows = [("PLUGIN", "VERSION", "ENABLED", "ROUTES", "ENV VARS")]
    for item in inventory(load_settings(CoreSettings), os.environ):
        if item.plugin is None:
            rows.append((item.name, item.version, "broken", f"BROKEN: {item.problem}", "-"))
            continue
        routes = ", ".join(f"{'|'.join(r.methods)} {r.path}" for r in item.plugin.routes) or "-"
        settings = item.plugin.settings
        env = ", ".join(env_name(type(settings), f) for f in type(settings).model_fields) if settings else "-"
        rows.append((item.name, item.version, "yes" if item.enabled else "no", routes, env))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def _targets_host() -> PluginHost:
    from simulator.host import PluginHost

    return PluginHost.from_environment()


def _targets(host: PluginHost, args: argparse.Namespace) -> int:
    from itertools import chain

    from simulator.targets import TargetRequest, check_api_path, render, split_base_url

    sets = host.target_sets()
    if args.list:
        for name, target_set in sets.items():
            print(f"{name}{' (default)' if target_set.default else ''}: {target_set.summary}")
        return 0
    if args.count < 1:
        raise StartupError(f"--count must be at least 1, not {args.count}")
    chosen = _choose(sets, args.kind)
    try:
        # Targets carry their API's full path: a --base-url with it ($BASE_URL/eligibility-signposting-api)
        # gives its origin rather than doubling the path; any other path is refused before anything prints.
        base, api_path = split_base_url(args.base_url)
        options = {option.key: getattr(args, f"option_{option.key}") for option in chosen.options}
        rng = random.Random(args.seed)
        request = TargetRequest(base_url=base, count=args.count, rng=rng, options=options)
        generated = host.generate(chosen, request)
        first = next(generated, None)
        if first is None:
            return 0
        check_api_path(args.base_url, api_path, first, chosen.name)
        for line in render(chain([first], generated), base, args.format):
            print(line)
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the interpreter's flush at exit
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    return 0


def _choose(sets: dict[str, Targets], kind: str | None) -> Targets:
    names = ", ".join(sets) or "(none: no enabled plugin offers targets)"
    if kind is None:
        default = next((t for t in sets.values() if t.default), None)
        if default is None:
            raise StartupError(f"name a target set with --kind; available: {names}")
        return default
    if kind in sets:
        return sets[kind]
    matches = [t for name, t in sets.items() if name.partition(".")[2] == kind]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise StartupError(f"--kind {kind} is ambiguous: {', '.join(t.name for t in matches)}")
    raise StartupError(f"no target set {kind!r}; available: {names}")


def _new_plugin(name: str, parent: Path) -> int:
    from simulator.scaffold import next_steps, scaffold

    created = scaffold(name, parent)
    print(f"created {created}")
    print(next_steps(name, created))
    return 0
