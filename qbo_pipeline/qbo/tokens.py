"""The encrypted token store: one file holding the OAuth tokens of every connected company.

File format (JSON, version 1)::

    {"format": "qbo_pipeline.tokens", "version": 1,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<b64>"},
     "check": "<b64>", "seal": "<b64>", "cipher": "AES-256-GCM", "nonce": "<b64>",
     "ciphertext": "<b64>"}

The passphrase goes through scrypt with the file's random salt into 64 bytes: the first 32 are the
AES-GCM key, the last 32 key an HMAC whose tag (``check``) tells a wrong passphrase apart from a
damaged file. The header is the AES-GCM associated data, so it cannot be altered unnoticed. The
``seal`` (SHA-256 of the header and ``check``, unkeyed: it detects damage, it protects nothing)
tells a damaged salt, scrypt parameter or ``check`` apart from a wrong passphrase, which would
otherwise look the same; files written before it have none and are read as before. Every
write is atomic (temp file, fsync, ``os.replace``) with mode 0600 in a 0700 directory.

Read-modify-write is serialised across threads and processes by a lock file beside the store;
token refreshes take a second, per-realm lock (:meth:`TokenStore.realm_lock`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from filelock import FileLock

from qbo_pipeline import config
from qbo_pipeline.atomic import atomic_write
from qbo_pipeline.config import ConfigError, Environment, Secret, Settings
from qbo_pipeline.qbo.faults import (
    RELOGIN_HINT,
    CorruptTokenStoreError,
    NotConnectedError,
    TokenStoreError,
    WrongPassphraseError,
)
from qbo_pipeline.qbo.redact import get_logger, register_secret

log = get_logger(__name__)

FORMAT = "qbo_pipeline.tokens"
VERSION = 1
DEFAULT_SCRYPT_N = 2**15
_CHECK_LABEL = b"qbo_pipeline token store passphrase check"
_NONCE_BYTES = 12
_PASSPHRASE_HINT = (
    "set QBO_PIPELINE_PASSPHRASE to the passphrase the store was created with "
    "(or delete the file and run `qbo-backup auth login` again)"
)


EMBEDDED_PASSPHRASE = "qbo-pipeline-embedded-sandbox"
"""The documented passphrase used for the EMBEDDED environment when none is set: the embedded
sandbox's tokens protect nothing real, so demos and tests run without a prompt."""


def resolve_passphrase(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> Secret:
    """The token store passphrase: from the environment, the embedded default, or a prompt.

    Args:
        settings: The settings (their environment decides whether the embedded default applies).
        env: The environment variables (default ``os.environ``).
        prompt: Asks the user (``getpass.getpass``-like); ``None`` for unattended runs.

    Raises:
        ConfigError: If no passphrase is available.
    """
    found = config.passphrase(env)
    if found:
        return found
    if settings.environment is Environment.EMBEDDED:
        log.info(
            "%s is not set: using the documented embedded-sandbox passphrase for %s "
            "(embedded sandbox tokens protect nothing real)",
            config.PASSPHRASE_VAR,
            settings.token_store_path,
        )
        return Secret(EMBEDDED_PASSPHRASE)
    if prompt is not None:
        entered = prompt("Token store passphrase: ")
        if entered:
            return Secret(entered)
    raise ConfigError(
        f"no token store passphrase: set {config.PASSPHRASE_VAR} (or run interactively to be asked)"
    )


@dataclass(frozen=True)
class RealmTokens:
    """The stored connection to one company.

    Attributes:
        realm_id: The QBO company id.
        environment: ``embedded``, ``sandbox`` or ``production``.
        api_base: The API host the company lives on.
        access_token: The current access token.
        access_expires_at: When it expires (UTC).
        refresh_token: The newest refresh token.
        refresh_expires_at: When that expires (UTC).
        company_name: The company's name, for ``auth list``.
        client_id: The OAuth app that owns the grant.
        client_secret: The app's secret, kept only for the embedded sandbox (whose secret protects
            nothing real); real apps read theirs from the settings.
        access_issued_at: When the access token was obtained (to refresh ahead of expiry).
        connected_at: When the company was connected.
        managed_sandbox: The company lives in the embedded sandbox that each command starts
            itself on its state file, so ``api_base`` is only the port of the last such run.
            False: a server someone runs serves it at ``api_base``, and commands go there.
    """

    realm_id: str
    environment: str
    api_base: str
    access_token: Secret = field(repr=False)
    access_expires_at: datetime
    refresh_token: Secret = field(repr=False)
    refresh_expires_at: datetime
    company_name: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = field(default=None, repr=False)
    access_issued_at: datetime | None = None
    connected_at: datetime | None = None
    managed_sandbox: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON for the (encrypted) payload."""
        return {
            "realm_id": self.realm_id,
            "environment": self.environment,
            "api_base": self.api_base,
            "access_token": self.access_token.reveal(),
            "access_expires_at": self.access_expires_at.isoformat(),
            "refresh_token": self.refresh_token.reveal(),
            "refresh_expires_at": self.refresh_expires_at.isoformat(),
            "company_name": self.company_name,
            "client_id": self.client_id,
            "client_secret": self.client_secret.reveal() if self.client_secret else None,
            "access_issued_at": _iso(self.access_issued_at),
            "connected_at": _iso(self.connected_at),
            "managed_sandbox": self.managed_sandbox,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RealmTokens:
        """Rebuild a record from its JSON form.

        Raises:
            KeyError, ValueError, TypeError: If the document is incomplete or malformed.
        """
        for key in ("access_token", "refresh_token", "client_secret"):
            register_secret(doc.get(key))
        secret = doc.get("client_secret")
        return cls(
            realm_id=str(doc["realm_id"]),
            environment=str(doc["environment"]),
            api_base=str(doc["api_base"]),
            access_token=Secret(str(doc["access_token"])),
            access_expires_at=_parse_time(doc["access_expires_at"]),
            refresh_token=Secret(str(doc["refresh_token"])),
            refresh_expires_at=_parse_time(doc["refresh_expires_at"]),
            company_name=doc.get("company_name"),
            client_id=doc.get("client_id"),
            client_secret=Secret(secret) if secret else None,
            access_issued_at=_parse_time(doc["access_issued_at"])
            if doc.get("access_issued_at")
            else None,
            connected_at=_parse_time(doc["connected_at"]) if doc.get("connected_at") else None,
            managed_sandbox=bool(doc.get("managed_sandbox", False)),
        )

    def with_tokens(
        self,
        *,
        access_token: Secret,
        access_expires_at: datetime,
        refresh_token: Secret | None,
        refresh_expires_at: datetime | None,
        issued_at: datetime,
    ) -> RealmTokens:
        """A copy with new tokens (the refresh token stays when QBO did not rotate it)."""
        return replace(
            self,
            access_token=access_token,
            access_expires_at=access_expires_at,
            refresh_token=refresh_token or self.refresh_token,
            refresh_expires_at=refresh_expires_at or self.refresh_expires_at,
            access_issued_at=issued_at,
        )


_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.RLock())


class TokenStore:
    """The encrypted file of every connected company's tokens.

    Args:
        path: The store file (``Settings.token_store_path``).
        passphrase: The passphrase the key is derived from.
        scrypt_n: scrypt's cost parameter for new files (existing files keep theirs).
    """

    def __init__(self, path: Path | str, passphrase: Secret, *, scrypt_n: int = DEFAULT_SCRYPT_N):
        if not isinstance(passphrase, Secret):
            raise TypeError("the passphrase must be a config.Secret")
        if not passphrase:
            raise TokenStoreError("the token store passphrase is empty; " + _PASSPHRASE_HINT)
        self.path = Path(path)
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._keys: dict[tuple[bytes, int, int, int], bytes] = {}

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    # -- locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store-wide lock (threads and processes) for a read-modify-write."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._ensure_dir()
        with _thread_lock(lock_path), FileLock(str(lock_path), mode=0o600):
            yield

    @contextlib.contextmanager
    def realm_lock(self, realm_id: str) -> Iterator[None]:
        """Hold the per-realm refresh lock (threads and processes)."""
        safe = "".join(c for c in realm_id if c.isalnum() or c in "-_") or "realm"
        lock_path = self.path.with_name(f"{self.path.name}.{safe}.lock")
        self._ensure_dir()
        with _thread_lock(lock_path), FileLock(str(lock_path), mode=0o600):
            yield

    # -- reading -------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the store file exists."""
        return self.path.exists()

    def load(self) -> dict[str, RealmTokens]:
        """Every stored company by realm id ({} when the file does not exist yet).

        Raises:
            WrongPassphraseError: If the passphrase does not open the file.
            CorruptTokenStoreError: If the file is damaged.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TokenStoreError(f"cannot read the token store {self.path}: {exc}") from None
        payload = self._decrypt(raw)
        try:
            realms = payload["realms"]
            return {rid: RealmTokens.from_json(doc) for rid, doc in realms.items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._corrupt("its contents are incomplete") from None

    def list(self) -> list[RealmTokens]:
        """Every stored company, ordered by company name then realm id."""
        return sorted(self.load().values(), key=lambda t: (t.company_name or "", t.realm_id))

    def get(self, realm_id: str) -> RealmTokens:
        """The stored tokens of one company.

        Raises:
            NotConnectedError: If the company was never connected (or was logged out).
        """
        found = self.load().get(realm_id)
        if found is None:
            raise NotConnectedError(
                f"company {realm_id} is not connected (no tokens in {self.path}); {RELOGIN_HINT}"
            )
        return found

    # -- writing -------------------------------------------------------------------------------

    def put(self, tokens: RealmTokens) -> None:
        """Store (or replace) one company's tokens, atomically."""
        with self.locked():
            realms = self.load()
            realms[tokens.realm_id] = tokens
            self._write(realms)

    def remove(self, realm_id: str) -> bool:
        """Forget one company; returns whether it was stored."""
        with self.locked():
            realms = self.load()
            if realms.pop(realm_id, None) is None:
                return False
            self._write(realms)
            return True

    def change_passphrase(self, new_passphrase: Secret) -> int:
        """Re-encrypt the store with a new passphrase (and a new salt).

        Returns:
            The number of companies re-encrypted.
        """
        if not isinstance(new_passphrase, Secret) or not new_passphrase:
            raise TokenStoreError("the new passphrase is empty")
        with self.locked():
            realms = self.load()
            self._passphrase = new_passphrase
            self._keys.clear()
            self._write(realms, new_salt=True)
            return len(realms)

    # -- internals -----------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(parent, 0o700)

    def _key(self, salt: bytes, n: int, r: int, p: int) -> bytes:
        cache_key = (salt, n, r, p)
        key = self._keys.get(cache_key)
        if key is None:
            kdf = Scrypt(salt=salt, length=64, n=n, r=r, p=p)
            key = kdf.derive(self._passphrase.reveal().encode("utf-8"))
            self._keys[cache_key] = key
        return key

    def _decrypt(self, raw: bytes) -> dict[str, Any]:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._corrupt("it is not a qbo_pipeline token store") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise self._corrupt("it is not a qbo_pipeline token store")
        if doc.get("version") != VERSION:
            raise self._corrupt(f"unsupported format version {doc.get('version')!r}")
        try:
            kdf = doc["kdf"]
            salt = _b64(kdf["salt"])
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
            check = _b64(doc["check"])
            nonce = _b64(doc["nonce"])
            ciphertext = _b64(doc["ciphertext"])
            if kdf.get("name") != "scrypt" or doc.get("cipher") != "AES-256-GCM":
                raise ValueError("unknown algorithm")
            if not (2 <= n <= 2**18 and n & (n - 1) == 0 and 1 <= r <= 16 and 1 <= p <= 16):
                raise ValueError("implausible scrypt parameters")
            if len(nonce) != _NONCE_BYTES:
                raise ValueError("not an AES-GCM nonce")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._corrupt("its header is damaged") from None
        if "seal" in doc and not hmac.compare_digest(str(doc["seal"]), _seal(doc)):
            raise self._corrupt(
                "its header is damaged (the salt, the scrypt parameters or the passphrase "
                "check differ from what was written)"
            )
        key = self._key(salt, n, r, p)
        try:
            plain = AESGCM(key[:32]).decrypt(nonce, ciphertext, _aad(doc))
        except InvalidTag:
            plain = None
        if not hmac.compare_digest(_check_tag(key), check):
            if plain is not None:  # the passphrase opens the store: the check itself is damaged
                raise self._corrupt("its passphrase check is damaged")
            raise WrongPassphraseError(
                f"wrong passphrase for the token store {self.path}; {_PASSPHRASE_HINT}"
            )
        try:
            if plain is None:
                raise InvalidTag
            payload = orjson.loads(plain)
        except (InvalidTag, orjson.JSONDecodeError):
            raise self._corrupt("its contents fail authentication (damaged or altered)") from None
        if not isinstance(payload, dict):
            raise self._corrupt("its contents are not a token list")
        return payload

    def _write(self, realms: dict[str, RealmTokens], *, new_salt: bool = False) -> None:
        self._ensure_dir()
        header = self._header(new_salt=new_salt)
        salt = _b64(header["kdf"]["salt"])
        kdf = header["kdf"]
        key = self._key(salt, kdf["n"], kdf["r"], kdf["p"])
        nonce = os.urandom(_NONCE_BYTES)
        payload = orjson.dumps({"realms": {rid: t.to_json() for rid, t in realms.items()}})
        doc = {
            **header,
            "check": _b64e(_check_tag(key)),
            "nonce": _b64e(nonce),
        }
        doc["seal"] = _seal(doc)
        doc["ciphertext"] = _b64e(AESGCM(key[:32]).encrypt(nonce, payload, _aad(doc)))
        atomic_write(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2), mode=0o600)
        log.debug("token store %s written (%d companies)", self.path, len(realms))

    def _header(self, *, new_salt: bool) -> dict[str, Any]:
        if not new_salt:
            try:
                current = orjson.loads(self.path.read_bytes())
                kdf = current["kdf"]
                return {
                    "format": FORMAT,
                    "version": VERSION,
                    "kdf": {
                        "name": "scrypt",
                        "n": int(kdf["n"]),
                        "r": int(kdf["r"]),
                        "p": int(kdf["p"]),
                        "salt": kdf["salt"],
                    },
                    "cipher": "AES-256-GCM",
                }
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                pass
        return {
            "format": FORMAT,
            "version": VERSION,
            "kdf": {"name": "scrypt", "n": self._scrypt_n, "r": 8, "p": 1, "salt": _salt()},
            "cipher": "AES-256-GCM",
        }

    def _corrupt(self, why: str) -> CorruptTokenStoreError:
        return CorruptTokenStoreError(
            f"the token store {self.path} is damaged: {why}; restore it from a backup, or delete "
            f"it and {RELOGIN_HINT}"
        )


def _salt() -> str:
    return _b64e(os.urandom(16))


def _check_tag(key: bytes) -> bytes:
    return hmac.new(key[32:], _CHECK_LABEL, hashlib.sha256).digest()[:16]


def _seal(doc: dict[str, Any]) -> str:
    """The header's and the check's SHA-256 (16 bytes, base64): detects their damage."""
    sealed = {k: doc.get(k) for k in ("format", "version", "kdf", "cipher", "check")}
    return _b64e(hashlib.sha256(orjson.dumps(sealed, option=orjson.OPT_SORT_KEYS)).digest()[:16])


def _aad(doc: dict[str, Any]) -> bytes:
    header = {k: doc[k] for k in ("format", "version", "kdf", "cipher")}
    return orjson.dumps(header, option=orjson.OPT_SORT_KEYS)


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected base64 text")
    return base64.b64decode(text.encode("ascii"), validate=True)


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)
