"""Settings: the core's ``SIMULATOR_*`` variables and the base class every plugin's settings extend.

Everything is read from the environment through pydantic-settings; plugins never touch ``os.environ``.
A bad value becomes a :class:`~simulator.errors.StartupError` naming the variable and the value.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _PydanticSettingsError

from simulator.errors import StartupError

_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]*")
S = TypeVar("S", bound=BaseSettings)


class CoreSettings(BaseSettings):
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

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class PluginSettings(BaseSettings):
    """Base for a plugin's settings class; set ``model_config = SettingsConfigDict(env_prefix="XYZ_")``.

    Every plugin gets the two delay variables: ``<PREFIX>_DELAY_SECONDS`` (a fixed delay, the original
    fake's variable) and ``<PREFIX>_DELAY`` (a JSON delay policy). Empty variables count as unset, like the
    original's ``${X:-0}``. Declare secrets as ``SecretStr`` so introspection masks them.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    delay_seconds: float = Field(0.0, ge=0, allow_inf_nan=False)
    delay: dict[str, Any] | None = None


def env_name(settings_class: type[BaseSettings], field: str) -> str:
    prefix = settings_class.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def load_settings(settings_class: type[S]) -> S:
    """Instantiate a settings class from the environment, or raise a one-line :class:`StartupError`."""
    try:
        return settings_class()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            var = env_name(settings_class, field)
            raw = os.environ.get(var, error.get("input"))
            problems.append(f"{var}={raw!r}: {error['msg']}")
        raise StartupError("invalid setting " + "; ".join(problems)) from None
    except _PydanticSettingsError as exc:
        # pydantic-settings fails before validation when a JSON-typed variable is not JSON.
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else "?"
        var = env_name(settings_class, field)
        raise StartupError(f"invalid setting {var}={os.environ.get(var)!r}: not valid JSON") from None


def public_values(settings: BaseSettings) -> list[dict[str, Any]]:
    """Each variable a settings object reads, with its current value; secrets masked."""
    rows = []
    for field, info in type(settings).model_fields.items():
        value = getattr(settings, field)
        if isinstance(value, SecretStr) or info.annotation is SecretStr:
            shown: Any = "**********" if value else None
        elif isinstance(value, tuple | frozenset | set):
            shown = list(value)
        else:
            shown = value
        rows.append({"env": env_name(type(settings), field), "value": shown, "default": _default(info)})
    return rows


def _default(info: Any) -> Any:
    default = info.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        return "**********"
    return list(default) if isinstance(default, tuple | frozenset | set) else default
