"""Settings: defaults, the original's empty-means-zero, and one-line errors naming the variable."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from simulator.errors import StartupError
from simulator.settings import CoreSettings, PluginSettings, load_settings, public_values


class Sample(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="SAMPLE_")
    api_key: SecretStr = SecretStr("")


def test_core_defaults_are_the_originals() -> None:
    core = load_settings(CoreSettings)
    assert (core.host, core.port, core.plugins, core.workers) == ("0.0.0.0", 9123, None, 1)


def test_empty_plugin_list_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_PLUGINS", "")
    assert load_settings(CoreSettings).plugins == ()
    monkeypatch.setenv("SIMULATOR_PLUGINS", " health , eligibility")
    assert load_settings(CoreSettings).plugins == ("health", "eligibility")


def test_empty_delay_is_zero_like_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_DELAY_SECONDS", "")
    assert load_settings(Sample).delay_seconds == 0


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("SAMPLE_DELAY_SECONDS", "abc", "invalid setting SAMPLE_DELAY_SECONDS='abc': "),
        ("SAMPLE_DELAY_SECONDS", "-1", "invalid setting SAMPLE_DELAY_SECONDS='-1': "),
        ("SAMPLE_DELAY_SECONDS", "nan", "invalid setting SAMPLE_DELAY_SECONDS='nan': "),
        ("SAMPLE_DELAY", "{not json", "invalid setting SAMPLE_DELAY='{not json': "),
    ],
)
def test_bad_plugin_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(StartupError) as info:
        load_settings(Sample)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SIMULATOR_PORT", "http"),
        ("SIMULATOR_WORKERS", "0"),
        ("SIMULATOR_LOG_FORMAT", "xml"),
        ("SIMULATOR_PLUGINS", "Health!"),
    ],
)
def test_bad_core_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(StartupError, match=f"^invalid setting {var}="):
        load_settings(CoreSettings)


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_API_KEY", "hunter2")
    rows = {row["env"]: row["value"] for row in public_values(load_settings(Sample))}
    assert rows["SAMPLE_API_KEY"] == "**********"
    assert rows["SAMPLE_DELAY_SECONDS"] == 0
