"""Plugin host: selection, settings, services, conflicts and misbehaving plugins: one line at start-up."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import pytest

import plugins.health
from simulator import (
    DelayKind,
    HttpTarget,
    PluginContext,
    PluginSettings,
    Request,
    Response,
    Route,
    Router,
    Service,
    SettingsConfigDict,
    StartupError,
    TargetRequest,
    Targets,
    hookimpl,
)
from simulator.delays import Fixed
from simulator.host import Installed, PluginHost, discover, inventory, select
from simulator.settings import CoreSettings


class DemoSettings(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    greeting: str = "hi"


async def ok(request: Request) -> Response:
    return Response.text("ok")


class Greeter:
    def __init__(self, text: str) -> None:
        self.text = text

    def greet(self) -> str:
        return self.text


@runtime_checkable
class CanGreet(Protocol):
    def greet(self) -> str: ...


class Demo:
    """A throwaway plugin: settings, one route, one service, one delay kind, one target set."""

    def __init__(self, path: str = "/demo", prefix_settings: type[PluginSettings] = DemoSettings) -> None:
        self.path = path
        self.settings_class = prefix_settings

    @hookimpl
    def simulator_settings_class(self) -> type[PluginSettings]:
        return self.settings_class

    @hookimpl
    def simulator_register_routes(self) -> Iterable[Route]:
        yield Route(self.path, ok, name="demo")

    @hookimpl
    def simulator_register_services(self, settings: Any) -> Iterable[Service]:
        yield Service("greeter", Greeter(getattr(settings, "greeting", "hi")), "says hi")

    @hookimpl
    def simulator_register_delay_kinds(self) -> Iterable[DelayKind]:
        yield DelayKind("always_one", lambda params: Fixed(1.0))

    @hookimpl
    def simulator_register_targets(self) -> Iterable[Targets]:
        def generate(request: TargetRequest) -> Iterable[HttpTarget]:
            return [HttpTarget("GET", self.path)] * request.count

        yield Targets("hits", generate, "GET the demo route")


class Other:
    @hookimpl
    def simulator_register_routes(self) -> Iterable[Route]:
        yield Route("/demo", ok, name="other")


def plugin(hook: str, function: Any) -> object:
    """A plugin object implementing one hook with ``function`` (no self)."""
    return type("Throwaway", (), {hook: staticmethod(hookimpl(function))})()


def test_plugins_register_routes_services_kinds_and_targets() -> None:
    host = PluginHost.from_plugins({"demo": Demo(), "health": plugins.health})
    demo = host.plugins["demo"]
    assert [r.name for r in demo.routes] == ["demo.demo"]
    assert [s.name for s in demo.services] == ["demo.greeter"]
    assert [k.name for k in demo.delay_kinds] == ["demo.always_one"]
    assert [t.name for t in demo.targets] == ["demo.hits"]
    assert host.plugins["health"].settings is None
    assert host.plugins["health"].routes[0].name == "health.health"


def test_a_plugin_can_select_a_delay_kind_registered_by_a_plugin() -> None:
    host = PluginHost.from_plugins({"demo": Demo()}, env={"DEMO_DELAY": '{"policy": "demo.always_one"}'})
    assert host.plugins["demo"].delay == Fixed(1.0)


def test_routes_see_services_of_every_plugin_by_name_and_type() -> None:
    seen: list[str] = []

    def routes(context: PluginContext) -> Iterable[Route]:
        seen.append(context.service("demo.greeter", CanGreet).greet())
        seen.append(context.service("demo.greeter", Greeter).text)
        seen.extend(g.greet() for g in context.services_of(CanGreet))
        assert context.optional_service("nobody.nothing", CanGreet) is None
        return ()

    # The user comes first: services are all registered before any plugin's routes.
    PluginHost.from_plugins({"user": plugin("simulator_register_routes", routes), "demo": Demo()})
    assert seen == ["hi", "hi", "hi"]


def test_a_missing_or_mistyped_service_names_what_is_registered() -> None:
    def needs_missing(context: PluginContext) -> Iterable[Route]:
        context.service("apim_oauth.tokens", CanGreet)
        return ()

    def needs_wrong_type(context: PluginContext) -> Iterable[Route]:
        context.service("demo.greeter", int)
        return ()

    message = "plugin 'user' needs the service 'apim_oauth.tokens', which no enabled plugin registers; "
    with pytest.raises(StartupError, match=re.escape(message + "registered: demo.greeter")) as error:
        PluginHost.from_plugins({"demo": Demo(), "user": plugin("simulator_register_routes", needs_missing)})
    assert error.value.plugin == "user"
    with pytest.raises(
        StartupError, match=r"expects the service 'demo\.greeter' to be a int, but it is a Greeter"
    ):
        PluginHost.from_plugins(
            {"demo": Demo(), "user": plugin("simulator_register_routes", needs_wrong_type)}
        )


def test_settings_instances_are_used_as_given_and_the_environment_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_GREETING", "from the shell")
    monkeypatch.setenv("SIMULATOR_SEED", "5")
    host = PluginHost.from_plugins({"demo": Demo()}, settings=[DemoSettings(greeting="given")])
    assert host.plugins["demo"].services[0].instance.text == "given"  # type: ignore[attr-defined]
    assert host.core.seed is None
    defaults = PluginHost.from_plugins({"demo": Demo()})
    assert defaults.plugins["demo"].settings == DemoSettings()
    assert DemoSettings().greeting == "hi"  # built directly, a settings class reads no variable


def test_settings_for_no_loaded_plugin_are_refused() -> None:
    class Stray(PluginSettings):
        model_config = SettingsConfigDict(env_prefix="STRAY_")

    with pytest.raises(StartupError, match="settings given for no loaded plugin: Stray"):
        PluginHost.from_plugins({"demo": Demo()}, settings=[Stray()])


def test_duplicate_route_names_both_plugins() -> None:
    with pytest.raises(StartupError, match=r"^route GET /demo is registered by both 'demo' and 'other'$"):
        PluginHost.from_plugins({"demo": Demo(), "other": Other()})


def test_templated_routes_with_the_same_shape_collide() -> None:
    def a() -> Iterable[Route]:
        yield Route("/x/{id}", ok, name="a")

    def b() -> Iterable[Route]:
        yield Route("/x/{nhs_number}", ok, name="b")

    with pytest.raises(StartupError, match=r"route GET /x/\{\} is registered by both 'a' and 'b'"):
        PluginHost.from_plugins(
            {"a": plugin("simulator_register_routes", a), "b": plugin("simulator_register_routes", b)}
        )


def test_duplicate_settings_prefix_names_both_plugins() -> None:
    with pytest.raises(StartupError, match="settings prefix DEMO_ is used by both plugins 'one' and 'two'"):
        PluginHost.from_plugins({"one": Demo("/one"), "two": Demo("/two")})


def test_the_core_prefix_and_paths_are_reserved() -> None:
    class Sneaky(PluginSettings):
        model_config = SettingsConfigDict(env_prefix="SIMULATOR_")

    with pytest.raises(StartupError, match="SIMULATOR_, which is the core's"):
        PluginHost.from_plugins({"sneaky": Demo(prefix_settings=Sneaky)})
    with pytest.raises(StartupError, match=r"/_simulator/\* is the core's"):
        PluginHost.from_plugins({"sneaky": Demo(path="/_simulator/plugins")})


def test_a_misspelt_hook_fails_start_up() -> None:
    with pytest.raises(StartupError, match="'typo' implements a hook that does not exist"):
        PluginHost.from_plugins({"typo": plugin("simulator_register_route", lambda: ())})


def test_a_hook_with_an_unknown_argument_fails_start_up() -> None:
    def routes(setings: object) -> Iterable[Route]:
        return ()

    with pytest.raises(StartupError, match="'badargs' cannot be registered"):
        PluginHost.from_plugins({"badargs": plugin("simulator_register_routes", routes)})


def _raises() -> Iterable[Route]:
    raise KeyError("boom")


def _yields_then_raises() -> Iterable[Route]:
    yield Route("/fine", ok)
    raise ValueError("half way")


@pytest.mark.parametrize(
    ("hook", "function", "message"),
    [
        (
            "simulator_register_routes",
            _raises,
            "plugin 'bad' failed in simulator_register_routes: KeyError: 'boom'",
        ),
        (
            "simulator_register_routes",
            _yields_then_raises,
            "plugin 'bad' failed in simulator_register_routes: ValueError: half way",
        ),
        (
            "simulator_register_routes",
            lambda: Route("/one", ok),
            "plugin 'bad': simulator_register_routes returned Route Route(path='/one'",
        ),
        (
            "simulator_register_routes",
            lambda: None,
            "plugin 'bad': simulator_register_routes returned NoneType None, not an iterable of Route",
        ),
        (
            "simulator_register_routes",
            lambda: "/health",
            "plugin 'bad': simulator_register_routes returned str '/health', not an iterable of Route",
        ),
        (
            "simulator_register_routes",
            lambda: [ok],
            "plugin 'bad': simulator_register_routes yielded function <function ok",
        ),
        (
            "simulator_register_delay_kinds",
            lambda: [{"name": "fast"}],
            "plugin 'bad': simulator_register_delay_kinds yielded dict {'name': 'fast'}, which is not a "
            "DelayKind",
        ),
        (
            "simulator_register_services",
            lambda: [Greeter("x")],
            "plugin 'bad': simulator_register_services yielded Greeter",
        ),
        (
            "simulator_register_services",
            lambda: 1 / 0,
            "plugin 'bad' failed in simulator_register_services: ZeroDivisionError: division by zero",
        ),
        (
            "simulator_register_targets",
            lambda: Targets("t", lambda request: []),
            "plugin 'bad': simulator_register_targets returned Targets",
        ),
        (
            "simulator_settings_class",
            lambda: DemoSettings(),
            "plugin 'bad': simulator_settings_class returned DemoSettings",
        ),
        (
            "simulator_settings_class",
            lambda: dict,
            "plugin 'bad': simulator_settings_class returned type <class 'dict'>, not a PluginSettings "
            "subclass",
        ),
    ],
)
def test_a_misbehaving_hook_stops_start_up_in_one_line_naming_plugin_and_hook(
    hook: str, function: Any, message: str
) -> None:
    with pytest.raises(StartupError) as error:
        PluginHost.from_plugins({"health": plugins.health, "bad": plugin(hook, function)})
    text = str(error.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert error.value.plugin == "bad"


def test_a_bad_plugin_setting_names_the_variable() -> None:
    with pytest.raises(StartupError, match=r"^invalid setting DEMO_DELAY_SECONDS='abc': "):
        PluginHost.from_plugins({"demo": Demo()}, env={"DEMO_DELAY_SECONDS": "abc"})


def test_delay_and_delay_seconds_together_are_refused_by_the_settings_class() -> None:
    env = {"DEMO_DELAY_SECONDS": "1", "DEMO_DELAY": '{"policy":"fixed","seconds":2}'}
    with pytest.raises(StartupError, match=r"^set either DEMO_DELAY_SECONDS or DEMO_DELAY, not both$"):
        PluginHost.from_plugins({"demo": Demo()}, env=env)


def test_selection_unset_empty_and_list() -> None:
    installed = {name: Installed(name, "1", object) for name in ("a", "b", "c")}
    assert [p.name for p in select(installed, None)] == ["a", "b", "c"]
    assert select(installed, ()) == []
    assert [p.name for p in select(installed, ("c", "a"))] == ["c", "a"]
    with pytest.raises(StartupError, match=r"unknown plugin\(s\) nope; available: a, b, c"):
        select(installed, ("a", "nope"))


def test_built_in_plugins_are_discovered_through_the_entry_point_group() -> None:
    assert {"health", "eligibility", "apim_oauth"} <= set(discover())


def test_plugins_env_var_selects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_PLUGINS", "health")
    assert list(PluginHost.from_environment().plugins) == ["health"]
    monkeypatch.setenv("SIMULATOR_PLUGINS", "")
    assert PluginHost.from_environment().plugins == {}


def test_the_inventory_lists_a_broken_disabled_plugin_as_broken_and_loads_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = {
        "demo": Installed("demo", "1", lambda: Demo()),
        "health": Installed("health", "2", lambda: plugins.health),
        "bad": Installed("bad", "3", lambda: plugin("simulator_register_routes", _raises)),
        "unimportable": Installed("unimportable", "4", lambda: __import__("no_such_module_here")),
    }
    monkeypatch.setattr("simulator.host.discover", lambda: installed)
    listed = {item.name: item for item in inventory(CoreSettings(plugins=("health",)), {})}
    assert listed["health"].enabled
    assert listed["health"].plugin is not None
    assert listed["demo"].plugin is not None
    assert not listed["demo"].enabled
    assert listed["bad"].plugin is None
    assert listed["bad"].problem == "plugin 'bad' failed in simulator_register_routes: KeyError: 'boom'"
    assert listed["unimportable"].problem is not None
    assert "failed to import: ModuleNotFoundError" in listed["unimportable"].problem


def test_a_router_is_an_iterable_of_routes() -> None:
    router = Router(prefix="/r")

    @router.get("/a")
    async def a(request: Request) -> Response:
        return Response.text("a")

    host = PluginHost.from_plugins({"r": plugin("simulator_register_routes", lambda: router)})
    assert [(r.name, r.path) for r in host.plugins["r"].routes] == [("r.a", "/r/a")]
