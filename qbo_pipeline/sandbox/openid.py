"""OpenID Connect as Intuit serves it: discovery documents, RS256 id_tokens, JWKS and userinfo.

- Discovery: ``/.well-known/openid_configuration`` (production) and
  ``/.well-known/openid_sandbox_configuration`` (sandbox), each with and without the trailing
  slash that Intuit's own OAuth libraries use; the fields Intuit publishes, pointing at this host.
- id_token: a JWT signed RS256 with a key made when first needed (it lives as long as the
  process; the state file never holds it), claims as Intuit issues them (``aud`` is a list).
- userinfo: the sandbox user of a company, with the claims the granted scopes allow, in Intuit's
  camelCase (``givenName``, ``emailVerified``...).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from qbo_pipeline.sandbox.store import SandboxStore

OPENID_SCOPES = ("openid", "email", "profile", "address", "phone")
"""The OpenID scopes Intuit's discovery documents list."""

ID_TOKEN_TTL = 3600
"""Seconds an id_token is valid (Intuit: one hour)."""

ISSUER_PATH = "/op/v1"
JWKS_PATH = "/op/v1/jwks"
USERINFO_PATH = "/v1/openid_connect/userinfo"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    """The RSA key that signs id_tokens; made on first use, published at the JWKS URI."""

    def __init__(self) -> None:
        """No key yet: generating one takes a moment, and most sandbox runs never need it."""
        self._key: rsa.RSAPrivateKey | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "SigningKey(<private>)"

    def _private(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    @property
    def kid(self) -> str:
        """The key id: a SHA-256 thumbprint of the public key (RFC 7638 member order)."""
        jwk = self._public_members()
        canonical = orjson.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]})
        return _b64url(hashlib.sha256(canonical).digest())[:16]

    def _public_members(self) -> dict[str, str]:
        numbers = self._private().public_key().public_numbers()
        return {"n": _int_b64url(numbers.n), "e": _int_b64url(numbers.e)}

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set served at ``jwks_uri``."""
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "kid": self.kid,
                    **self._public_members(),
                }
            ]
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS (RS256) of the claims."""
        header = _b64url(orjson.dumps({"alg": "RS256", "kid": self.kid}))
        payload = _b64url(orjson.dumps(claims))
        signing_input = f"{header}.{payload}".encode("ascii")
        signature = self._private().sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64url(signature)}"


def issuer(base_url: str) -> str:
    """The issuer of this host's id_tokens (Intuit's is ``https://oauth.platform.intuit.com/op/v1``)."""
    return base_url.rstrip("/") + ISSUER_PATH


def discovery(base_url: str) -> dict[str, Any]:
    """The discovery document, with the fields and values Intuit publishes, for this host."""
    base = base_url.rstrip("/")
    return {
        "issuer": issuer(base),
        "authorization_endpoint": f"{base}/connect/oauth2",
        "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
        "userinfo_endpoint": f"{base}{USERINFO_PATH}",
        "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
        "jwks_uri": f"{base}{JWKS_PATH}",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": list(OPENID_SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }


def scopes(scope: str | None) -> set[str]:
    """The scope string of a request (space-separated, as OAuth sends it) as a set."""
    return set((scope or "").split())


def subject(realm_id: str) -> str:
    """The ``sub`` of a company's sandbox user: a stable GUID, as Intuit's subjects are."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qbo-sandbox-user/{realm_id}"))


APP_USER_ID = "9130000000000001"
"""The QBO user id the sandbox's own writes carry (activity simulation, incidents, admin
endpoints): a fixed user of the app, never one of a company's sandbox users."""


def user_id(realm_id: str) -> str:
    """The QBO user id of a company's sandbox user, as ``MetaData.LastModifiedByRef`` names it.

    QBO's user ids are 16-digit numbers (``9341457021722234`` in the captures), not the
    OpenID ``sub``; this one is stable per company and derived from the same user.
    """
    number = uuid.UUID(subject(realm_id)).int % 10**15
    return f"9{number:015d}"


def id_token_claims(
    *, realm_id: str, client_id: str, issuer_url: str, now: float, auth_time: float
) -> dict[str, Any]:
    """The claims of an id_token as Intuit issues them."""
    return {
        "sub": subject(realm_id),
        "aud": [client_id],
        "realmid": realm_id,
        "auth_time": int(auth_time),
        "iss": issuer_url,
        "exp": int(now) + ID_TOKEN_TTL,
        "iat": int(now),
    }


def userinfo(store: SandboxStore, realm_id: str, granted: Iterable[str]) -> dict[str, Any]:
    """Intuit's userinfo answer for a company's sandbox user, limited to the granted scopes."""
    granted = set(granted)
    company = next(iter(store.iter_records(realm_id, "CompanyInfo")), None) or {}
    claims: dict[str, Any] = {"sub": subject(realm_id)}
    if "email" in granted:
        claims["email"] = f"sandbox.user+{realm_id}@example.com"
        claims["emailVerified"] = True
    if "profile" in granted:
        claims["givenName"] = "Sandbox"
        claims["familyName"] = "User"
    if "phone" in granted:
        digits = "".join(
            c for c in (company.get("PrimaryPhone") or {}).get("FreeFormNumber", "") if c.isdigit()
        )
        claims["phoneNumber"] = f"+1 {digits}" if digits else ""
        claims["phoneNumberVerified"] = False
    if "address" in granted:
        addr = company.get("CompanyAddr") or {}
        claims["address"] = {
            "streetAddress": addr.get("Line1", ""),
            "locality": addr.get("City", ""),
            "region": addr.get("CountrySubDivisionCode", ""),
            "postalCode": addr.get("PostalCode", ""),
            "country": addr.get("Country", ""),
        }
    return claims
