"""Settings: the core's ``SIMULATOR_*`` variables and the base class every plugin's settings extend.

Values come from the environment through pydantic-settings, but only when the host loads them
(:func:`load_settings`): plugins never touch ``os.environ``, and a settings object built directly, as in a
test (``WeatherSettings(message="hi")``), reads nothing but its arguments, so a developer's shell cannot
change what a test sees. A bad value becomes a :class:`~simulator.errors.StartupError` naming the variable
and the value (shortened when long, masked when secret) in one line.

Every value that is accepted is safe to serve with: numbers are finite and bounded, JSON is strict (no
``NaN``, bounded nesting), and a setting that names a file reads it with :func:`read_setting_file`, which
refuses special files (``/dev/zero``, a FIFO, a folder) without blocking and files over a size limit.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Self, TypeVar, get_args
from urllib.parse import urlsplit

import orjson
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

from simulator.delays import MAX_SECONDS
from simulator.errors import StartupError

_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)", re.ASCII)
_NAMESPACE = re.compile(r"[0-9A-Za-z.\-_/#: ]{1,255}", re.ASCII)
_PRINTABLE = re.compile(r"[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*", re.ASCII)
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}", re.ASCII)
MAX_URL_LENGTH: Final = 2048
MAX_SEED: Final = 2**63 - 1
MAX_GRACEFUL_SECONDS: Final = 3600
_SHOWN_CHARACTERS: Final = 100  # of a value, in an error message
_ERRORS_SHOWN: Final = 3  # problems per variable, in an error message
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

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """Strict JSON (RFC 8259): no ``NaN``/``Infinity``, at most 1024 levels; a ``ValueError`` says why."""
        try:
            decoded = super().decode_complex_value(field_name, field, value)
        except RecursionError:
            raise ValueError("nested too deeply") from None
        if decoded is value or not isinstance(value, str | bytes):
            return decoded  # a NoDecode field parses its text itself
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(str(exc)) from None


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


def check_url(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``value`` if it is a URL of one of ``schemes`` with a host (and a valid port), at most 2048 characters
    of printable ASCII without spaces; else a ``ValueError`` saying why."""
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be a URL of at most {MAX_URL_LENGTH} characters, not {len(value):,}")
    if not re.fullmatch(r"[\x21-\x7e]+", value):
        raise ValueError("must be a URL of printable ASCII characters, without spaces")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be an {' or '.join(s + '://' for s in schemes)} URL with a host")
    parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    return value


def _base_url(value: str) -> str:
    return check_url(value).rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_base_url)]
"""A setting holding an ``http(s)://host[:port][/path]`` URL, kept without a trailing slash."""


MAX_FILE_BYTES: Final = 1 << 20  # what a setting's file may weigh unless it says otherwise


def read_setting_file(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file a setting names, at most ``max_bytes``; else a ``ValueError`` saying why
    in a few words (``not a regular file (a FIFO)``), for the caller to put after the variable or the path.

    Special files are refused without blocking: a device is never opened (``stat`` first), and the file is
    opened non-blocking (a FIFO swapped in meanwhile opens at once) and checked again with ``fstat`` before a
    byte is read, so ``/dev/zero``, a FIFO, a socket or a folder never hang start-up nor fill the memory.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        mode = os.stat(name).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file ({_file_kind(mode)})")
        fd = os.open(name, flags)
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            raise ValueError(f"larger than {max_bytes:,} bytes ({info.st_size:,})")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise ValueError(f"larger than {max_bytes:,} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def check_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is a folder (by ``stat``: nothing is opened); else a ``ValueError`` saying why."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except (OSError, ValueError) as exc:
        raise ValueError(f"not a folder ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(f"not a folder ({_file_kind(info.st_mode)})")
    return Path(name)


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    )
    return next((what for test, what in kinds if test(mode)), "a special file")


def shown_setting(value: Any, limit: int = _SHOWN_CHARACTERS) -> str:
    """A variable's value for an error message: its repr, cut to about ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


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
    # Seeds every random generator and keys the synthetic patients' hash: a 64-bit number at most.
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    # At most an hour: longer than any orchestrator waits, and timers cannot wait for ever.
    graceful_timeout: float = Field(25.0, ge=0, le=MAX_GRACEFUL_SECONDS, allow_inf_nan=False)
    max_body_bytes: int = Field(1 << 20, ge=1, le=1 << 30)
    # What one connection may ask of a worker (simulator/protocol.py, docs/reliability.md).
    max_header_bytes: int = Field(65_536, ge=1024, le=1 << 20)
    max_headers: int = Field(100, ge=10, le=10_000)
    max_url_bytes: int = Field(8192, ge=256, le=1 << 20)
    max_connections: int = Field(10_000, ge=1, le=1_000_000)
    header_timeout: float = Field(10.0, gt=0, le=3600, allow_inf_nan=False)
    # Above the ALB's 60 s idle timeout: a target that closes first makes the ALB answer 502.
    keepalive_timeout: float = Field(75.0, gt=0, le=3600, allow_inf_nan=False)
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
    admin_token: SecretStr | None = None
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
        if not re.fullmatch(r"[\x21-\x7e]+", value):
            raise ValueError("must be a URL of printable ASCII characters, without spaces")
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if value == "":  # every interface, as 0.0.0.0
            return value
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        name = value.removesuffix(".")
        if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
            raise ValueError("must be an IP address or a host name")
        return value

    @field_validator("cloudwatch_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _NAMESPACE.fullmatch(value) or value.startswith((":", "AWS/")):
            raise ValueError(
                "must be 1 to 255 letters, digits and . - _ / # : or spaces, not starting with : or AWS/"
            )
        return value

    @field_validator("service_name")
    @classmethod
    def _service_name(cls, value: str) -> str:
        if not _PRINTABLE.fullmatch(value):
            raise ValueError("must be printable ASCII characters, not only spaces")
        return value

    @field_validator("admin_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("must be 16 to 512 printable ASCII characters without spaces")
        return value

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = tuple(name.strip() for name in value.split(",") if name.strip())
            if len(names) > 100:
                raise ValueError(f"at most 100 plugins, not {len(names):,}")
            for name in names:
                if not _PLUGIN_NAME.fullmatch(name):
                    raise ValueError(f"{shown_setting(name, 40)} is not a plugin name")
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

    # At most a day, as every delay policy (simulator/delays.py).
    delay_seconds: float = Field(0.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    delay: dict[str, Any] | None = Field(None, max_length=1000)
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


def _is_secret(settings_class: type[BaseSettings], variable: str) -> bool:
    for field, info in settings_class.model_fields.items():
        if variable in (env_name(settings_class, field), *_aliases(info)):
            annotation = info.annotation
            return annotation is SecretStr or SecretStr in get_args(annotation)
    return False


def _displayed(settings_class: type[BaseSettings], variable: str, value: Any) -> str:
    """How an error shows a variable's value: shortened when long, masked when it is a secret."""
    if _is_secret(settings_class, variable) and value is not None:
        length = len(value) if isinstance(value, str) else 0
        return f"<secret, {length:,} characters>" if length else "<secret>"
    return shown_setting(value)


def _where(loc: tuple[int | str, ...]) -> str:
    """The place inside a JSON value an error is about: ``[0].public_key``, ``.Actionable``, ``['a b']``."""
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part.isidentifier() and len(part) <= 40:
            parts.append(f".{part}")
        else:
            parts.append(f"[{shown_setting(part, 40)}]")
    return "".join(parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_settings(settings_class: type[S], environ: Mapping[str, str] | None = None) -> S:
    """``settings_class`` built from ``environ`` (default ``os.environ``), or a one-line StartupError."""
    variables: Mapping[str, str] = os.environ if environ is None else environ
    token = _ENVIRON.set(variables)
    try:
        return settings_class()
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}
        inputs: dict[str, Any] = {}
        rules = []
        for error in exc.errors():
            message = _one_line(error["msg"].removeprefix("Value error, "))
            if not error["loc"]:  # a rule about several variables: its message names them
                rules.append(message)
                continue
            var = _variable(settings_class, str(error["loc"][0]), variables)
            inside = _where(error["loc"][1:])
            problems.setdefault(var, []).append(f"{var}{inside}: {message}" if inside else message)
            inputs.setdefault(var, error.get("input"))
        values = []
        for var, found in problems.items():
            more = len(found) - _ERRORS_SHOWN
            text = "; ".join(found[:_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
            shown = _displayed(settings_class, var, _raw(variables, var, inputs[var]))
            values.append(f"{var}={shown}: {text}")
        lines = (["invalid setting " + "; ".join(values)] if values else []) + rules
        raise StartupError("; ".join(lines)) from None
    except _PydanticSettingsError as exc:
        # pydantic-settings fails before validation when a JSON-typed variable is not JSON.
        match = re.search(r'field "(\w+)"', str(exc))
        var = _variable(settings_class, match.group(1) if match else "?", variables)
        cause = f" ({_one_line(str(exc.__cause__))[:120]})" if exc.__cause__ is not None else ""
        shown = _displayed(settings_class, var, _raw(variables, var, None))
        raise StartupError(f"invalid setting {var}={shown}: not valid JSON{cause}") from None
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
