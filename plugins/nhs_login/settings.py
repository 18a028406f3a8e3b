"""``LOGIN_*`` settings of the NHS login fake (and the original fake's ``APP_ROOT_URL``)."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator

from simulator import BaseUrl, PluginSettings, SettingsConfigDict

Validation = Literal["structural", "strict", "off"]
_NHS_NUMBER = re.compile(r"\d{10}", re.ASCII)


class ClientRegistration(BaseModel):
    """One relying party, as NHS login registers it at onboarding."""

    model_config = {"extra": "forbid", "frozen": True}

    client_id: str = Field(min_length=1, max_length=255)
    # Exact-match redirect URIs (the real rules: no wildcards, at most 10); empty = any.
    redirect_uris: tuple[str, ...] = Field(default=(), max_length=10)
    # The client's RSA public key, PEM text or a file path: strict validation checks assertions with it.
    public_key: str | None = None

    @field_validator("redirect_uris")
    @classmethod
    def _uris(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for uri in value:
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URL without a fragment")
        return value


class LoginSettings(PluginSettings):
    """Settings, prefix ``LOGIN_``; the README's "NHS login" section lists them all."""

    model_config = SettingsConfigDict(env_prefix="LOGIN_")

    # The original fake's variable: every URL of the discovery document, and the ID tokens' issuer.
    root_url: BaseUrl = "http://localhost:9123"
    # Where /authorize sends the browser when the request has no redirect_uri (the original always did).
    app_root_url: BaseUrl = Field(
        "https://localhost:3000", validation_alias=AliasChoices("LOGIN_APP_ROOT_URL", "APP_ROOT_URL")
    )
    # The RSA key ID tokens are signed with, PEM text or a file; unset = the bundled (public) default key.
    private_key: SecretStr | None = None
    validation: Validation = "structural"
    clients: tuple[ClientRegistration, ...] = ()
    # The patient /authorize picks when the request names none (the original's default).
    default_nhs_number: str = "9686368973"

    @field_validator("root_url")
    @classmethod
    def _no_path(cls, value: str) -> str:
        if urlsplit(value).path not in ("", "/"):
            raise ValueError(
                "must be scheme://host[:port] without a path: the routes are /authorize, /token..."
            )
        return value

    @field_validator("validation", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("clients")
    @classmethod
    def _unique(cls, value: tuple[ClientRegistration, ...]) -> tuple[ClientRegistration, ...]:
        ids = [client.client_id for client in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"client_id registered twice: {', '.join(duplicates)}")
        return value

    @field_validator("default_nhs_number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not _NHS_NUMBER.fullmatch(value):
            raise ValueError("must be a 10-digit NHS number")
        return value
