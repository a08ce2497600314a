from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from qbo_pipeline.config import ConfigError, Environment, Secret, Settings
from qbo_pipeline.qbo.faults import (
    CorruptTokenStoreError,
    NotConnectedError,
    TokenStoreError,
    WrongPassphraseError,
)
from qbo_pipeline.qbo.tokens import (
    EMBEDDED_PASSPHRASE,
    RealmTokens,
    TokenStore,
    resolve_passphrase,
)

ACCESS = "access-token-value-0123456789abcdef"
REFRESH = "refresh-token-value-fedcba9876543210"
PASS = Secret("correct horse battery staple")


def record(realm: str = "9130", access: str = ACCESS, refresh: str = REFRESH) -> RealmTokens:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return RealmTokens(
        realm_id=realm,
        environment="embedded",
        api_base="http://127.0.0.1:9999",
        access_token=Secret(access),
        access_expires_at=now + timedelta(hours=1),
        refresh_token=Secret(refresh),
        refresh_expires_at=now + timedelta(days=100),
        company_name="Craig's Design and Landscaping Services",
        client_id="qbo-sandbox-client",
        client_secret=Secret("qbo-sandbox-secret"),
        access_issued_at=now,
        connected_at=now,
    )


def store_at(path: Path, passphrase: Secret = PASS) -> TokenStore:
    return TokenStore(path, passphrase, scrypt_n=2**10)


def test_round_trip_and_modes(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "tokens.enc"
    store = store_at(path)
    assert store.load() == {}
    store.put(record("1"))
    store.put(record("2", access="another-access-token-xyz"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = store_at(path).load()
    assert set(loaded) == {"1", "2"}
    assert loaded["1"] == record("1")
    assert loaded["2"].access_token.reveal() == "another-access-token-xyz"
    assert [t.realm_id for t in store.list()] == ["1", "2"]
    # No temp files left behind, nothing readable in the file.
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == [
        "tokens.enc"
    ]
    raw = path.read_bytes()
    for secret in (ACCESS, REFRESH, "qbo-sandbox-secret", "Craig"):
        assert secret.encode() not in raw


def test_remove_and_get(tmp_path: Path) -> None:
    store = store_at(tmp_path / "t.enc")
    store.put(record("1"))
    assert store.get("1").realm_id == "1"
    assert store.remove("1") is True
    assert store.remove("1") is False
    with pytest.raises(NotConnectedError, match="qbo-backup auth login"):
        store.get("1")


def test_each_write_uses_a_fresh_nonce_but_the_same_salt(tmp_path: Path) -> None:
    path = tmp_path / "t.enc"
    store = store_at(path)
    store.put(record())
    first = orjson.loads(path.read_bytes())
    store.put(record())
    second = orjson.loads(path.read_bytes())
    assert first["kdf"]["salt"] == second["kdf"]["salt"]
    assert first["nonce"] != second["nonce"]


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "t.enc"
    store_at(path).put(record())
    with pytest.raises(WrongPassphraseError) as info:
        store_at(path, Secret("wrong")).load()
    text = str(info.value)
    assert "wrong passphrase" in text
    assert "QBO_PIPELINE_PASSPHRASE" in text
    assert "correct horse" not in text and "wrong" in text
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda raw: b"garbage", "not a qbo_pipeline token store"),
        (lambda raw: raw[: len(raw) // 2], "not a qbo_pipeline token store"),
        (lambda raw: b"", "not a qbo_pipeline token store"),
        (lambda raw: _edit(raw, ciphertext=_flip), "fail authentication"),
        (lambda raw: _edit(raw, nonce=_flip), "fail authentication"),
        (lambda raw: _edit(raw, cipher="ROT13"), "header is damaged"),
        (lambda raw: _edit(raw, nonce=""), "header is damaged"),  # found by tests/cli fuzzing
        (lambda raw: _edit(raw, nonce="AAAA"), "header is damaged"),
        (lambda raw: _edit(raw, version=9), "unsupported format version"),
        (
            lambda raw: _edit(raw, kdf={"name": "scrypt", "n": 2**30, "r": 8, "p": 1}),
            "header is damaged",
        ),
    ],
)
def test_corrupt_store(tmp_path: Path, damage: object, why: str) -> None:
    path = tmp_path / "t.enc"
    store_at(path).put(record())
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(CorruptTokenStoreError) as info:
        store_at(path).load()
    assert why in str(info.value)
    assert str(path) in str(info.value)
    assert "qbo-backup auth login" in str(info.value)


def _flip(text: str) -> str:
    import base64

    data = bytearray(base64.b64decode(text))
    data[0] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def _edit(raw: bytes, **changes: object) -> bytes:
    doc = orjson.loads(raw)
    for key, change in changes.items():
        doc[key] = change(doc[key]) if callable(change) else change
    return orjson.dumps(doc)


HEADER_DAMAGE = {
    "salt": lambda raw: _edit(raw, kdf=lambda kdf: {**kdf, "salt": _flip(kdf["salt"])}),
    "check": lambda raw: _edit(raw, check=_flip),
    "scrypt r": lambda raw: _edit(raw, kdf=lambda kdf: {**kdf, "r": 9}),
    "seal": lambda raw: _edit(raw, seal=_flip),
}


@pytest.mark.parametrize("field", HEADER_DAMAGE)
def test_a_damaged_salt_or_check_is_not_a_wrong_passphrase(tmp_path: Path, field: str) -> None:
    """Issue #18: a tampered salt or check was reported as a wrong passphrase."""
    path = tmp_path / "t.enc"
    store_at(path).put(record())
    path.write_bytes(HEADER_DAMAGE[field](path.read_bytes()))
    with pytest.raises(CorruptTokenStoreError) as info:
        store_at(path).load()
    assert "is damaged" in str(info.value) and str(path) in str(info.value)
    assert "wrong passphrase" not in str(info.value)
    with pytest.raises(TokenStoreError):  # and with a wrong passphrase too, it never opens
        store_at(path, Secret("wrong")).load()


def test_a_damaged_check_of_an_unsealed_store_is_told_by_the_passphrase(tmp_path: Path) -> None:
    """A store written before the seal: the right passphrase still tells a damaged check."""
    path = tmp_path / "t.enc"
    store_at(path).put(record())
    doc = orjson.loads(path.read_bytes())
    del doc["seal"]
    path.write_bytes(orjson.dumps(doc))
    assert store_at(path).get("9130").refresh_token.reveal() == REFRESH
    path.write_bytes(_edit(orjson.dumps(doc), check=_flip))
    with pytest.raises(CorruptTokenStoreError, match="passphrase check is damaged"):
        store_at(path).load()
    with pytest.raises(WrongPassphraseError):
        store_at(path, Secret("wrong")).load()


def test_change_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "t.enc"
    store = store_at(path)
    store.put(record("1"))
    salt = orjson.loads(path.read_bytes())["kdf"]["salt"]
    assert store.change_passphrase(Secret("new passphrase")) == 1
    assert orjson.loads(path.read_bytes())["kdf"]["salt"] != salt
    with pytest.raises(WrongPassphraseError):
        store_at(path).load()
    assert store_at(path, Secret("new passphrase")).get("1") == record("1")
    with pytest.raises(TokenStoreError):
        store.change_passphrase(Secret(""))


def test_secrets_absent_from_reprs(tmp_path: Path) -> None:
    rec = record()
    store = store_at(tmp_path / "t.enc")
    for text in (repr(rec), str(rec), repr(store)):
        assert ACCESS not in text
        assert REFRESH not in text
        assert "qbo-sandbox-secret" not in text
        assert "correct horse" not in text


def test_passphrase_must_be_a_secret(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        TokenStore(tmp_path / "t.enc", "plain")  # type: ignore[arg-type]
    with pytest.raises(TokenStoreError, match="empty"):
        TokenStore(tmp_path / "t.enc", Secret(""))


def _settings(tmp_path: Path, environment: Environment) -> Settings:
    return Settings.from_env(
        {
            "QBO_DATA_DIR": str(tmp_path),
            "QBO_ENVIRONMENT": environment.value,
            "QBO_CLIENT_ID": "id",
            "QBO_CLIENT_SECRET": "secret",
        }
    )


def test_resolve_passphrase(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    embedded = _settings(tmp_path, Environment.EMBEDDED)
    production = _settings(tmp_path, Environment.PRODUCTION)
    assert resolve_passphrase(embedded, env={"QBO_PIPELINE_PASSPHRASE": "x"}) == Secret("x")
    with caplog.at_level("INFO", logger="qbo_pipeline.qbo"):
        assert resolve_passphrase(embedded, env={}) == Secret(EMBEDDED_PASSPHRASE)
    assert "embedded-sandbox passphrase" in caplog.text
    assert resolve_passphrase(production, env={}, prompt=lambda _: "typed") == Secret("typed")
    with pytest.raises(ConfigError, match="QBO_PIPELINE_PASSPHRASE"):
        resolve_passphrase(production, env={})
