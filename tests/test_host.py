"""Plugin host: selection, settings, conflicts and misspelt hooks all fail start-up in one line."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from pydantic_settings import SettingsConfigDict

import plugins.health
from simulator import DelayPolicyType, PluginSettings, Request, Response, ResponseGenerator, Route, hookimpl
from simulator.delays import Fixed
from simulator.errors import StartupError
from simulator.host import Available, PluginHost, discover, select
from simulator.records import PluginContext


class DemoSettings(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")


async def ok(request: Request) -> Response:
    return Response.text("ok")


class Demo:
    """A throwaway plugin: settings, one route, one generator, one delay policy."""

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
    def simulator_register_generators(self) -> Iterable[ResponseGenerator]:
        yield ResponseGenerator("greeting", lambda: "hi")

    @hookimpl
    def simulator_register_delay_policies(self) -> Iterable[DelayPolicyType]:
        yield DelayPolicyType("always_one", lambda params: Fixed(1.0))


class Other:
    @hookimpl
    def simulator_register_routes(self) -> Iterable[Route]:
        yield Route("/demo", ok, name="other")


def test_plugins_register_routes_generators_and_policies() -> None:
    host = PluginHost.from_plugins({"demo": Demo(), "health": plugins.health})
    demo = host.plugins["demo"]
    assert [r.name for r in demo.routes] == ["demo.demo"]
    assert [g.name for g in demo.generators] == ["demo.greeting"]
    assert [t.name for t in demo.delay_policies] == ["demo.always_one"]
    assert host.plugins["health"].settings is None
    assert host.generators()["demo.greeting"].generate() == "hi"


def test_a_plugin_can_select_a_policy_registered_by_a_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DELAY", '{"policy": "demo.always_one"}')
    host = PluginHost.from_plugins({"demo": Demo()})
    assert host.plugins["demo"].delay == Fixed(1.0)


def test_routes_see_generators_of_other_plugins() -> None:
    seen: list[str] = []

    class User:
        @hookimpl
        def simulator_register_routes(self, context: PluginContext) -> Iterable[Route]:
            seen.append(context.generator("demo.greeting").generate())
            return ()

    PluginHost.from_plugins({"demo": Demo(), "user": User()})
    assert seen == ["hi"]


def test_duplicate_route_names_both_plugins() -> None:
    with pytest.raises(StartupError, match=r"^route GET /demo is registered by both 'demo' and 'other'$"):
        PluginHost.from_plugins({"demo": Demo(), "other": Other()})


def test_templated_routes_with_the_same_shape_collide() -> None:
    class A:
        @hookimpl
        def simulator_register_routes(self) -> Iterable[Route]:
            yield Route("/x/{id}", ok, name="a")

    class B:
        @hookimpl
        def simulator_register_routes(self) -> Iterable[Route]:
            yield Route("/x/{nhs_number}", ok, name="b")

    with pytest.raises(StartupError, match=r"route GET /x/\{\} is registered by both 'a' and 'b'"):
        PluginHost.from_plugins({"a": A(), "b": B()})


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
    class Typo:
        @hookimpl
        def simulator_register_route(self) -> Iterable[Route]:
            return ()

    with pytest.raises(StartupError, match="'typo' implements a hook that does not exist"):
        PluginHost.from_plugins({"typo": Typo()})


def test_a_hook_with_an_unknown_argument_fails_start_up() -> None:
    class BadArgs:
        @hookimpl
        def simulator_register_routes(self, setings: object) -> Iterable[Route]:
            return ()

    with pytest.raises(StartupError, match="'badargs' cannot be registered"):
        PluginHost.from_plugins({"badargs": BadArgs()})


def test_a_bad_plugin_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DELAY_SECONDS", "abc")
    with pytest.raises(StartupError, match=r"^invalid setting DEMO_DELAY_SECONDS='abc': "):
        PluginHost.from_plugins({"demo": Demo()})


def test_delay_and_delay_seconds_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DELAY_SECONDS", "1")
    monkeypatch.setenv("DEMO_DELAY", '{"policy":"fixed","seconds":2}')
    with pytest.raises(StartupError, match="set either DEMO_DELAY_SECONDS or DEMO_DELAY, not both"):
        PluginHost.from_plugins({"demo": Demo()})


def test_selection_unset_empty_and_list() -> None:
    available = {name: Available(name, "1", object) for name in ("a", "b", "c")}
    assert [p.name for p in select(available, None)] == ["a", "b", "c"]
    assert select(available, ()) == []
    assert [p.name for p in select(available, ("c", "a"))] == ["c", "a"]
    with pytest.raises(StartupError, match=r"unknown plugin\(s\) nope; available: a, b, c"):
        select(available, ("a", "nope"))


def test_built_in_plugins_are_discovered_through_the_entry_point_group() -> None:
    assert {"health", "eligibility", "apim_oauth"} <= set(discover())


def test_plugins_env_var_selects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_PLUGINS", "health")
    assert list(PluginHost.from_environment().plugins) == ["health"]
    monkeypatch.setenv("SIMULATOR_PLUGINS", "")
    assert PluginHost.from_environment().plugins == {}
