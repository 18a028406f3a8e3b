"""The provider's signing key: RS512 JWTs, the JWKS that verifies them, the secret that binds codes.

Every worker of a simulator, and every task behind a load balancer, must sign with the same key, or a token
signed by one would not verify against the JWKS another serves. With ``LOGIN_PRIVATE_KEY`` unset they all
load the same bundled key (``data/default-signing-key.pem``, public: it ships in the image, as NHS login's
own retired mock published its key); give every task the same ``LOGIN_PRIVATE_KEY`` for a key of your own.
The ``kid`` is the key's RFC 7638 thumbprint, so it is the same wherever the key is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from simulator import StartupError

DEFAULT_KEY: Final = Path(__file__).resolve().parent / "data" / "default-signing-key.pem"
_MAX_PEM_BYTES: Final = 64 << 10
_PADDING: Final = padding.PKCS1v15()
_SHA512: Final = hashes.SHA512()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_pem(source: str, variable: str) -> bytes:
    """PEM text, or the contents of the file it names (bounded, regular files only)."""
    text = source.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    path = Path(text)
    if not path.is_file():
        raise StartupError(f"invalid setting {variable}: neither PEM text nor a readable file")
    if path.stat().st_size > _MAX_PEM_BYTES:
        raise StartupError(f"invalid setting {variable}: {path} is larger than a PEM key can be")
    return path.read_bytes()


def public_key(source: str, variable: str) -> rsa.RSAPublicKey:
    """An RSA public key (2048 bits or more) from PEM text or a file: a client's registered key."""
    raw = load_pem(source, variable)
    try:
        key = serialization.load_pem_public_key(raw)
    except ValueError as exc:
        raise StartupError(f"invalid setting {variable}: not a PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise StartupError(f"invalid setting {variable}: needs an RSA key of 2048 bits or more")
    return key


class SigningKey:
    """One RSA private key: signs RS512 JWTs with a fixed header, verifies its own, publishes its JWK."""

    def __init__(self, pem: bytes, variable: str = "LOGIN_PRIVATE_KEY") -> None:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise StartupError(
                f"invalid setting {variable}: not an unencrypted PEM private key ({exc})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
            raise StartupError(f"invalid setting {variable}: needs an RSA key of 2048 bits or more")
        self._key = key
        self._public = key.public_key()
        numbers = self._public.public_numbers()
        n = b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        e = b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
        thumbprint = orjson.dumps({"e": e, "kty": "RSA", "n": n})  # RFC 7638: required members, sorted
        self.kid = b64url(hashlib.sha256(thumbprint).digest())
        self.jwk: dict[str, str] = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS512",
            "kid": self.kid,
            "n": n,
            "e": e,
        }
        self._header = b64url(orjson.dumps({"alg": "RS512", "typ": "JWT", "kid": self.kid}))
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Codes and refresh tokens are bound with a secret every holder of this key derives alike.
        self.secret = hashlib.sha256(b"api-simulator nhs_login codes\x00" + der).digest()

    @classmethod
    def from_settings(cls, private_key: str | None) -> SigningKey:
        if private_key is None:
            return cls(DEFAULT_KEY.read_bytes(), "the bundled default key")
        return cls(load_pem(private_key, "LOGIN_PRIVATE_KEY"))

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS512 JWS of ``claims`` with header ``{"alg": "RS512", "typ": "JWT", "kid": kid}``."""
        signing_input = f"{self._header}.{b64url(orjson.dumps(claims))}"
        signature = self._key.sign(signing_input.encode(), _PADDING, _SHA512)
        return f"{signing_input}.{b64url(signature)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a JWT this key signed (any header this key's would be), or None."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != self._header:
            return None
        try:
            self._public.verify(b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode(), _PADDING, _SHA512)
            claims = orjson.loads(b64url_decode(parts[1]))
        except (InvalidSignature, ValueError):
            return None
        return claims if isinstance(claims, dict) else None

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self.secret, data, hashlib.sha256).digest()[:16]
