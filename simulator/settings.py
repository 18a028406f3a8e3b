"""Settings: the core's ``SIMULATOR_*`` variables and the base class every plugin's settings extend.

Values come from the environment through pydantic-settings, but only when the host loads them
(:func:`load_settings`): plugins never touch ``os.environ``, and a settings object built directly, as in a
test (``WeatherSettings(message="hi")``), reads nothing but its arguments, so a developer's shell cannot
change what a test sees. A bad value becomes a :class:`~simulator.errors.StartupError` naming the variable
and the value in one line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource
from pydantic_settings import SettingsConfigDict as SettingsConfigDict
from pydantic_settings import SettingsError as _PydanticSettingsError
from pydantic_settings.sources.utils import parse_env_vars

from simulator.errors import StartupError

_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]*")
S = TypeVar("S", bound=BaseSettings)

# The variables a settings object is being loaded from; none unless load_settings says so.
_ENVIRON: ContextVar[Mapping[str, str]] = ContextVar("simulator_environ", default=MappingProxyType({}))


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class _FromEnvironment(BaseSettings):
    """Reads the variables :func:`load_settings` names, and only those (no dotenv, no secrets folder)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _MappingEnvSource(settings_cls, _ENVIRON.get())


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return frozenset(item.strip() for item in value.split(",") if item.strip())
    return value


CommaSet = Annotated[frozenset[str], NoDecode, BeforeValidator(_split_commas)]
"""A setting holding a comma list (``APIM_API_KEYS=a, b``): a frozenset of the stripped, non-empty items."""


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_base_url)]
"""A setting holding an ``http(s)://host[:port][/path]`` URL, kept without a trailing slash."""


class CoreSettings(_FromEnvironment):
    """The host's own settings, prefix ``SIMULATOR_``."""

    model_config = SettingsConfigDict(env_prefix="SIMULATOR_", extra="ignore", frozen=True)

    host: str = "0.0.0.0"
    port: int = Field(9123, ge=0, le=65535)
    # None (unset) = every discovered plugin; () (set but empty) = none.
    plugins: Annotated[tuple[str, ...] | None, NoDecode] = None
    workers: int = Field(1, ge=1, le=64)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"
    seed: int | None = None
    graceful_timeout: float = Field(25.0, ge=0, allow_inf_nan=False)
    max_body_bytes: int = Field(1 << 20, ge=1)
    # Observability: Prometheus metrics, the request journal, the access log, CloudWatch (EMF) records.
    metrics: bool = True
    journal_size: int = Field(10_000, ge=0, le=1_000_000)
    journal_bodies: bool = False
    journal_body_bytes: int = Field(1024, ge=1, le=65_536)
    access_log: Literal["off", "text", "json"] = "off"
    cloudwatch: Literal["off", "emf"] = "off"
    cloudwatch_namespace: str = Field("api-simulator", min_length=1, max_length=255)
    cloudwatch_seconds: float = Field(60.0, ge=1, le=3600, allow_inf_nan=False)
    service_name: str = Field("api-simulator", min_length=1, max_length=255)
    # Runtime control: writes need "Authorization: Bearer <this>"; unset, they are refused.
    admin_token: SecretStr | None = Field(None, min_length=16, max_length=512)
    # A scenario timeline (JSON or YAML file) started with the simulator.
    scenario: str | None = Field(None, min_length=1, max_length=4096)
    # Redis or Valkey shared by several simulators (tasks): control changes reach all of them.
    state_url: str | None = Field(None, max_length=2048)

    @field_validator("state_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.netloc or parts.path):
            raise ValueError("must be a redis://, rediss:// (TLS) or unix:// URL")
        return value

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = tuple(name.strip() for name in value.split(",") if name.strip())
            for name in names:
                if not _PLUGIN_NAME.fullmatch(name):
                    raise ValueError(f"{name!r} is not a plugin name")
            return names
        return value

    @field_validator("log_level", "log_format", "access_log", "cloudwatch", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class PluginSettings(_FromEnvironment):
    """Base for a plugin's settings class; set ``model_config = SettingsConfigDict(env_prefix="XYZ_")``.

    Every plugin gets the two delay variables: ``<PREFIX>_DELAY_SECONDS`` (a fixed delay, the original
    fake's variable) and ``<PREFIX>_DELAY`` (a JSON delay policy); setting both stops start-up. And
    ``<PREFIX>_FAULTS``, a JSON list of fault rules armed from the start (``simulator/faults.py``). Empty
    variables count as unset, like the original's ``${X:-0}``. Declare secrets as ``SecretStr`` so
    introspection masks them. Keep an older variable name working with
    ``Field(validation_alias=AliasChoices("NEW_NAME", "OLD_NAME"))``.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    delay_seconds: float = Field(0.0, ge=0, allow_inf_nan=False)
    delay: dict[str, Any] | None = None
    # Fault rules armed at start-up (simulator/faults.py); validated against the plugin's routes by the host.
    faults: list[Any] | None = None

    @model_validator(mode="after")
    def _one_delay(self) -> Self:
        if self.delay is not None and "delay_seconds" in self.model_fields_set:
            cls = type(self)
            raise ValueError(
                f"set either {env_name(cls, 'delay_seconds')} or {env_name(cls, 'delay')}, not both"
            )
        return self


def env_name(settings_class: type[BaseSettings], field: str) -> str:
    """The variable a field is read from: ``<env_prefix><FIELD>``, or its first alias."""
    info = settings_class.model_fields.get(field)
    if info is not None:
        aliases = _aliases(info)
        if aliases:
            return aliases[0]
    prefix = settings_class.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def _aliases(info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, str):
        return [alias.upper()]
    if isinstance(alias, AliasChoices):
        return [choice.upper() for choice in alias.choices if isinstance(choice, str)]
    return []


def _variable(settings_class: type[BaseSettings], loc: str, environ: Mapping[str, str]) -> str:
    """The variable an error is about: the one of a field's names that is set, else its main name."""
    present = {name.upper() for name in environ}
    for field, info in settings_class.model_fields.items():
        names = [env_name(settings_class, field), *_aliases(info)]
        if loc == field or loc.upper() in names:
            return next((name for name in names if name in present), names[0])
    return loc.upper()


def _raw(environ: Mapping[str, str], variable: str, fallback: Any) -> Any:
    for name, value in environ.items():
        if name.upper() == variable:
            return value
    return fallback


def load_settings(settings_class: type[S], environ: Mapping[str, str] | None = None) -> S:
    """``settings_class`` built from ``environ`` (default ``os.environ``), or a one-line StartupError."""
    variables: Mapping[str, str] = os.environ if environ is None else environ
    token = _ENVIRON.set(variables)
    try:
        return settings_class()
    except ValidationError as exc:
        values, rules = [], []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if not error["loc"]:  # a rule about several variables: its message names them
                rules.append(message)
                continue
            var = _variable(settings_class, str(error["loc"][0]), variables)
            values.append(f"{var}={_raw(variables, var, error.get('input'))!r}: {message}")
        lines = (["invalid setting " + "; ".join(values)] if values else []) + rules
        raise StartupError("; ".join(lines)) from None
    except _PydanticSettingsError as exc:
        # pydantic-settings fails before validation when a JSON-typed variable is not JSON.
        match = re.search(r'field "(\w+)"', str(exc))
        var = _variable(settings_class, match.group(1) if match else "?", variables)
        raise StartupError(f"invalid setting {var}={_raw(variables, var, None)!r}: not valid JSON") from None
    finally:
        _ENVIRON.reset(token)


def public_values(settings: BaseSettings) -> list[dict[str, Any]]:
    """Each variable a settings object reads, with its current value and default; secrets masked."""
    cls = type(settings)
    values = settings.model_dump(mode="json")
    defaults = cls.model_construct().model_dump(mode="json")
    rows = []
    for field in cls.model_fields:
        value, default = values[field], defaults.get(field)
        if isinstance(getattr(settings, field), frozenset | set):  # dumped in no particular order
            value, default = sorted(value, key=str), sorted(default or [], key=str)
        rows.append({"env": env_name(cls, field), "value": value, "default": default})
    return rows
