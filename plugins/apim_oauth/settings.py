"""``APIM_*`` settings of the NHS APIM OAuth2 token endpoint fake."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field, field_validator

from plugins.apim_oauth.jwks import is_url, parse
from simulator import CommaSet, PluginSettings, SettingsConfigDict, check_url, read_setting_file

Validation = Literal["structural", "strict", "off"]
MAX_JWKS_BYTES: Final = 1 << 20  # a key set of a few hundred keys
MIN_KEY_BITS: Final = 2048
MAX_ENTRIES: Final = 10_000_000
MAX_TTL_SECONDS: Final = 366 * 86_400
MAX_LIST_ITEMS: Final = 10_000
MAX_ITEM_CHARACTERS: Final = 1024


class ApimSettings(PluginSettings):
    """Settings, prefix ``APIM_``; the README's "NHS APIM OAuth2 token endpoint" section lists them all."""

    model_config = SettingsConfigDict(env_prefix="APIM_")

    validation: Validation = "structural"
    # The `iss`/`sub` values (Apigee consumer keys) that exist in strict mode.
    api_keys: CommaSet = frozenset()
    # A JWKS document, a file path or an http(s) URL: the one key set every app's assertion is verified with.
    jwks: str | None = None
    jwks_timeout_seconds: float = Field(5.0, gt=0, le=55, allow_inf_nan=False)
    jwks_cache_seconds: float = Field(3600.0, ge=0, le=MAX_TTL_SECONDS, allow_inf_nan=False)
    # What `aud` must equal in strict mode; unset = the URL the request came to (X-Forwarded-* honoured).
    token_url: str | None = None
    rate_limit_per_minute: int = Field(0, ge=0, le=MAX_ENTRIES)
    jti_max_entries: int = Field(100_000, ge=1, le=MAX_ENTRIES)
    jti_ttl_seconds: int = Field(2_592_000, ge=1, le=MAX_TTL_SECONDS)
    token_max_entries: int = Field(100_000, ge=1, le=MAX_ENTRIES)
    # Token exchange, strict mode only: accepted ID-token issuers (empty = any) and their key set.
    id_token_issuers: CommaSet = frozenset()
    id_token_jwks: str | None = None

    @field_validator("validation", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("api_keys", "id_token_issuers")
    @classmethod
    def _items(cls, value: frozenset[str]) -> frozenset[str]:
        if len(value) > MAX_LIST_ITEMS:
            raise ValueError(f"at most {MAX_LIST_ITEMS:,} items, not {len(value):,}")
        if any(len(item) > MAX_ITEM_CHARACTERS for item in value):
            raise ValueError(f"an item is at most {MAX_ITEM_CHARACTERS} characters")
        return value

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("jwks", "id_token_jwks")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None:
            check_jwks(value)
        return value


def check_jwks(source: str) -> None:
    """Settings-time check of a JWKS source: a URL must be one (it is fetched on first use); an inline
    document or a regular file of at most 1 MiB must hold usable RSA keys of 2048 bits or more."""
    if is_url(source):
        check_url(source)
        return
    text = source.strip()
    raw = text.encode() if text.startswith("{") else _jwks_file(text)
    try:
        keys = parse(raw)
    except ValueError:
        raise
    except Exception as exc:  # PyJWT and cryptography raise their own types for bad key material
        raise ValueError(f"a JWKS key is unusable: {' '.join(str(exc).split())[:200]}") from None
    for kid, key in keys.items():
        bits = getattr(key.key, "key_size", 0)
        if bits < MIN_KEY_BITS:
            raise ValueError(f"JWKS key {kid[:40]!r} has {bits} bits; RS512 needs {MIN_KEY_BITS} or more")


def _jwks_file(path: str) -> bytes:
    try:
        return read_setting_file(path, MAX_JWKS_BYTES)
    except ValueError as exc:
        raise ValueError(f"not a JWKS document, an http(s) URL or a readable JWKS file: {exc}") from None
