"""Settings: defaults, the original's empty-means-zero, and one-line errors naming the variable."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices, Field, SecretStr

from simulator import BaseUrl, CommaSet, CoreSettings, PluginSettings, SettingsConfigDict, StartupError
from simulator.settings import env_name, load_settings, public_values


class Sample(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="SAMPLE_")
    api_key: SecretStr = SecretStr("")
    names: CommaSet = frozenset()
    root: BaseUrl = "http://localhost:9123"
    legacy: str = Field("x", validation_alias=AliasChoices("SAMPLE_LEGACY", "OLD_LEGACY"))


def test_core_defaults_are_the_originals() -> None:
    core = load_settings(CoreSettings, {})
    assert (core.host, core.port, core.plugins, core.workers) == ("0.0.0.0", 9123, None, 1)


def test_settings_read_the_environment_only_when_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_LEGACY", "from the shell")
    assert Sample().legacy == "x"
    assert load_settings(Sample).legacy == "from the shell"
    assert load_settings(Sample, {"SAMPLE_LEGACY": "given"}).legacy == "given"


def test_empty_plugin_list_means_none() -> None:
    assert load_settings(CoreSettings, {"SIMULATOR_PLUGINS": ""}).plugins == ()
    both = load_settings(CoreSettings, {"SIMULATOR_PLUGINS": " health , eligibility"})
    assert both.plugins == ("health", "eligibility")


def test_empty_delay_is_zero_like_the_original() -> None:
    assert load_settings(Sample, {"SAMPLE_DELAY_SECONDS": ""}).delay_seconds == 0


def test_comma_sets_and_base_urls() -> None:
    sample = load_settings(Sample, {"SAMPLE_NAMES": " a, b,,a ", "SAMPLE_ROOT": "https://h.example:8443/p/"})
    assert sample.names == frozenset({"a", "b"})
    assert sample.root == "https://h.example:8443/p"
    with pytest.raises(
        StartupError, match=r"^invalid setting SAMPLE_ROOT='ftp://h': must be an http:// or https://"
    ):
        load_settings(Sample, {"SAMPLE_ROOT": "ftp://h"})
    with pytest.raises(StartupError, match="SAMPLE_ROOT='http://'"):
        load_settings(Sample, {"SAMPLE_ROOT": "http://"})


def test_an_aliased_setting_is_named_by_the_variable_that_was_set() -> None:
    assert env_name(Sample, "legacy") == "SAMPLE_LEGACY"
    assert load_settings(Sample, {"OLD_LEGACY": "old"}).legacy == "old"

    class Strict(PluginSettings):
        model_config = SettingsConfigDict(env_prefix="STRICT_")
        url: BaseUrl = Field("http://a", validation_alias=AliasChoices("STRICT_URL", "URL"))

    with pytest.raises(StartupError, match=r"^invalid setting URL='ftp://x': must be"):
        load_settings(Strict, {"URL": "ftp://x"})
    with pytest.raises(StartupError, match=r"^invalid setting STRICT_URL='ftp://y': must be"):
        load_settings(Strict, {"STRICT_URL": "ftp://y"})


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("SAMPLE_DELAY_SECONDS", "abc", "invalid setting SAMPLE_DELAY_SECONDS='abc': "),
        ("SAMPLE_DELAY_SECONDS", "-1", "invalid setting SAMPLE_DELAY_SECONDS='-1': "),
        ("SAMPLE_DELAY_SECONDS", "nan", "invalid setting SAMPLE_DELAY_SECONDS='nan': "),
        ("SAMPLE_DELAY", "{not json", "invalid setting SAMPLE_DELAY='{not json': "),
    ],
)
def test_bad_plugin_values_name_the_variable(var: str, value: str, expected: str) -> None:
    with pytest.raises(StartupError) as info:
        load_settings(Sample, {var: value})
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SIMULATOR_PORT", "http"),
        ("SIMULATOR_WORKERS", "0"),
        ("SIMULATOR_LOG_FORMAT", "xml"),
        ("SIMULATOR_PLUGINS", "Health!"),
        ("SIMULATOR_STATE_URL", "http://redis:6379"),
        ("SIMULATOR_STATE_URL", "redis"),
        ("SIMULATOR_ADMIN_TOKEN", "short"),
        ("SIMULATOR_SCENARIO", ""),
    ],
)
def test_bad_core_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(StartupError, match=f"^invalid setting {var}="):
        load_settings(CoreSettings, {var: value})


def test_secrets_are_masked_and_sets_listed_in_order() -> None:
    rows = {
        row["env"]: row
        for row in public_values(load_settings(Sample, {"SAMPLE_API_KEY": "hunter2", "SAMPLE_NAMES": "b,a"}))
    }
    assert rows["SAMPLE_API_KEY"]["value"] == "**********"
    assert rows["SAMPLE_DELAY_SECONDS"] == {"env": "SAMPLE_DELAY_SECONDS", "value": 0.0, "default": 0.0}
    assert rows["SAMPLE_NAMES"] == {"env": "SAMPLE_NAMES", "value": ["a", "b"], "default": []}
    assert rows["SAMPLE_LEGACY"]["default"] == "x"
