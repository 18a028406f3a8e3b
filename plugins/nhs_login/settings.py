"""``LOGIN_*`` settings of the NHS login fake (and the original fake's ``APP_ROOT_URL``)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator

from plugins.nhs_number import problem
from simulator import BaseUrl, PluginSettings, SettingsConfigDict, StartupError, check_url, read_setting_file

Validation = Literal["structural", "strict", "off"]
_NHS_NUMBER = re.compile(r"\d{10}", re.ASCII)
_USERS: Final = Path(__file__).resolve().parent / "data" / "users.json"
MAX_PEM_BYTES: Final = 64 << 10  # as keys.py reads
MAX_CLIENTS: Final = 1000


def check_pem_source(source: str, *, private: bool) -> str:
    """PEM text, or the path of a regular file of at most 64 KiB (read here without blocking: a FIFO or a
    device is refused), holding an RSA key of 2048 bits or more: private (the signing key) or public."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from plugins.nhs_login.keys import SigningKey

    text = source.strip()
    if text.startswith("-----BEGIN"):
        if len(text) > MAX_PEM_BYTES:
            raise ValueError(f"PEM text larger than {MAX_PEM_BYTES:,} bytes")
        pem = text.encode()
    else:
        try:
            pem = read_setting_file(text, MAX_PEM_BYTES)
        except ValueError as exc:
            raise ValueError(f"neither PEM text nor a readable file: {exc}") from None
    if private:
        try:
            SigningKey(pem, "it")
        except StartupError as exc:  # keys.py's own words, after "invalid setting it: "
            raise ValueError(str(exc).partition(": ")[2] or str(exc)) from None
        return source
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("needs an RSA key of 2048 bits or more")
    return source


@cache
def _named_users() -> frozenset[str]:
    return frozenset(json.loads(_USERS.read_text(encoding="utf-8")))


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
            shown = repr(uri[:60]) + ("..." if len(uri) > 60 else "")
            try:
                check_url(uri)
            except ValueError:
                raise ValueError(
                    f"redirect URI {shown} must be an absolute http(s) URL without a fragment"
                ) from None
            if urlsplit(uri).fragment:
                raise ValueError(f"redirect URI {shown} must be an absolute http(s) URL without a fragment")
        return value

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else check_pem_source(value, private=False)


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
    clients: tuple[ClientRegistration, ...] = Field((), max_length=MAX_CLIENTS)
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

    @field_validator("private_key")
    @classmethod
    def _private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_pem_source(value.get_secret_value(), private=True)
        return value

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
        if problem(value) is not None and value not in _named_users():
            raise ValueError(f"must be a valid NHS number or a named test user: {problem(value)}")
        return value
