"""``APIM_*`` settings of the NHS APIM OAuth2 token endpoint fake."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from plugins.apim_oauth.jwks import check_source
from simulator import CommaSet, PluginSettings, SettingsConfigDict

Validation = Literal["structural", "strict", "off"]


class ApimSettings(PluginSettings):
    """Settings, prefix ``APIM_``; the README's "NHS APIM OAuth2 token endpoint" section lists them all."""

    model_config = SettingsConfigDict(env_prefix="APIM_")

    validation: Validation = "structural"
    # The `iss`/`sub` values (Apigee consumer keys) that exist in strict mode.
    api_keys: CommaSet = frozenset()
    # A JWKS document, a file path or an http(s) URL: the one key set every app's assertion is verified with.
    jwks: str | None = None
    jwks_timeout_seconds: float = Field(5.0, gt=0, le=55, allow_inf_nan=False)
    jwks_cache_seconds: float = Field(3600.0, ge=0, allow_inf_nan=False)
    # What `aud` must equal in strict mode; unset = the URL the request came to (X-Forwarded-* honoured).
    token_url: str | None = None
    rate_limit_per_minute: int = Field(0, ge=0)
    jti_max_entries: int = Field(100_000, ge=1)
    jti_ttl_seconds: int = Field(2_592_000, ge=1)
    token_max_entries: int = Field(100_000, ge=1)
    # Token exchange, strict mode only: accepted ID-token issuers (empty = any) and their key set.
    id_token_issuers: CommaSet = frozenset()
    id_token_jwks: str | None = None

    @field_validator("validation", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("jwks", "id_token_jwks")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None:
            check_source(value)
        return value
