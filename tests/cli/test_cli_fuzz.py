"""Fuzzing ``qbo-backup`` (issue #18): command-line arguments, damaged lake files, damaged tokens.

Every case must end in success or a clear error: exit code 0, 1 or 2; a failure ends with one
``error: ...`` line; never a traceback, never an error the boundary calls unexpected (a bug),
never a secret; and the lake is never changed. The lake is a
real one written by ``qbo-backup backup`` from the embedded sandbox (cli_helpers.build_data).
Runs are derandomised and bounded (a few dozen cases each), so the module takes seconds.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from cli_helpers import OTHER, REALM, run, tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbo_pipeline.config import Secret
from qbo_pipeline.qbo.tokens import EMBEDDED_PASSPHRASE, TokenStore

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PASSPHRASE = "fuzz passphrase that must never be printed"


@contextmanager
def copy_of(template: Path) -> Iterator[Path]:
    """A fresh copy of the data folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="qbo-fuzz-") as folder:
        data = Path(folder) / "data"
        shutil.copytree(template, data)
        yield data


def secrets_of(template: Path) -> list[str]:
    """The tokens in the template's token store: none may ever be printed."""
    store = TokenStore(template / "secrets" / "tokens.enc", Secret(EMBEDDED_PASSPHRASE))
    return [
        secret.reveal()
        for record in store.list()
        for secret in (record.access_token, record.refresh_token)
    ]


def assert_clear(result: Any, secrets: list[str], lake: dict[str, bytes], data: Path) -> None:
    """Success or a clear error, no traceback, no secret, and the lake as it was."""
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert "error: unexpected" not in result.stderr, result.stderr
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("error: "), result.output
    for secret in [*secrets, PASSPHRASE]:
        assert secret not in result.output
    assert tree(data / "lake") == lake


# ---- command-line arguments ------------------------------------------------------------------

TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
REALMS = st.sampled_from([REALM, OTHER, "999", "../../etc", "", "realm=1", "a/b", ".", "-x"]) | TEXT
SNAPSHOTS = (
    st.sampled_from(
        ["latest", "previous", "2024", "2024-12-31", "1999-01-01", "2024-13-45", "", "T", "Z"]
    )
    | TEXT
)
ENTITIES = (
    st.sampled_from(["Invoice", "invoice", "Term", "Nonsense", "../x", "Invoice,Bill"]) | TEXT
)
FORMATS = st.sampled_from(["csv", "json", "xml", "csv,xml", "pdf", ""]) | TEXT
COUNTS = st.sampled_from(["0", "1", "-1", "7", "x", "99999999999999999999"]) | TEXT


@st.composite
def arguments(draw: st.DrawFn, snapshot_ids: list[str]) -> list[str]:
    """A read-only command with arguments drawn from valid, invalid and hostile values."""
    snapshot = draw(SNAPSHOTS | st.sampled_from(snapshot_ids) | st.sampled_from(snapshot_ids[:1]))

    def maybe(flag: str, values: st.SearchStrategy[str]) -> list[str]:
        return [flag, draw(values)] if draw(st.booleans()) else []

    command = draw(
        st.sampled_from(
            ["snapshots", "verify", "export", "restore", "gc", "prune", "unlock", "diff", "auth"]
        )
    )
    if command == "snapshots":
        return ["snapshots", *maybe("--realm", REALMS), *(["--retired"] * draw(st.booleans()))]
    if command == "verify":
        return ["verify", *maybe("--realm", REALMS), *maybe("--snapshot", st.just(snapshot))]
    if command == "export":
        return [
            "export",
            *maybe("--realm", REALMS),
            *maybe("--snapshot", st.just(snapshot)),
            *maybe("--entities", ENTITIES),
            *maybe("--format", FORMATS),
            *maybe("--max-records-per-file", COUNTS),
        ]
    if command == "restore":
        sub = draw(st.sampled_from(["list", "show", "status"]))
        plan = draw(st.sampled_from([f"{snapshot}-0123abcd", "nonsense", ""]) | TEXT)
        return ["restore", sub, *([] if sub == "list" else [plan]), *maybe("--realm", REALMS)]
    if command == "gc":
        return ["gc", "--dry-run", *maybe("--realm", REALMS)]
    if command == "prune":
        return ["prune", "--dry-run", *maybe("--realm", REALMS), *maybe("--daily", COUNTS)]
    if command == "unlock":
        return ["unlock", draw(REALMS)]
    if command == "diff":
        return ["diff", snapshot, draw(SNAPSHOTS)]
    return ["auth", "list"]


def test_any_arguments_end_cleanly(cli_data_template: Path) -> None:
    secrets = secrets_of(cli_data_template)
    commits = cli_data_template / "lake" / f"realm={REALM}" / "commits"
    ids = sorted(p.stem for p in commits.glob("*.json"))

    @FUZZ
    @given(args=arguments(ids))
    def case(args: list[str]) -> None:
        with copy_of(cli_data_template) as data:
            lake = tree(data / "lake")
            assert_clear(run(data, *args), secrets, lake, data)

    case()


# ---- damaged lake files ----------------------------------------------------------------------


def _damage(raw: bytes, kind: str, where: float, value: int) -> bytes:
    at = min(int(where * len(raw)), max(len(raw) - 1, 0))
    if kind == "truncate":
        return raw[:at]
    if kind == "empty":
        return b""
    if kind == "garbage":
        return bytes((value + i * 7) % 256 for i in range(max(len(raw) // 4, 1)))
    changed = bytearray(raw)
    if changed:
        changed[at] = changed[at] ^ (1 << (value % 8)) if kind == "flip" else value
    return bytes(changed)


READERS: dict[str, Callable[[str], list[str]]] = {
    "snapshots": lambda entity: ["snapshots"],
    "verify": lambda entity: ["verify", "--realm", REALM],
    "export": lambda entity: ["export", "--realm", REALM, "--entities", entity],
    "export earlier": lambda entity: ["export", "--realm", REALM, "--snapshot", "2024-01-01"],
    "restore list": lambda entity: ["restore", "list", "--realm", REALM],
}


def test_damaged_lake_files_end_cleanly(cli_data_template: Path) -> None:
    secrets = secrets_of(cli_data_template)
    root = cli_data_template / "lake" / f"realm={REALM}"
    files = sorted(str(p.relative_to(cli_data_template)) for p in root.rglob("*") if p.is_file())

    @FUZZ
    @given(
        name=st.sampled_from(files),
        kind=st.sampled_from(["flip", "set", "truncate", "empty", "garbage"]),
        where=st.floats(0, 1),
        value=st.integers(0, 255),
        reader=st.sampled_from(sorted(READERS)),
    )
    def case(name: str, kind: str, where: float, value: int, reader: str) -> None:
        with copy_of(cli_data_template) as data:
            path = data / name
            path.write_bytes(_damage(path.read_bytes(), kind, where, value))
            lake = tree(data / "lake")
            entity = Path(name).stem if name.endswith(".parquet") else "Invoice"
            assert_clear(run(data, *READERS[reader](entity)), secrets, lake, data)

    case()


# ---- damaged token stores --------------------------------------------------------------------


def _damage_store(raw: bytes, field: str, kind: str, where: float, value: int) -> bytes:
    if field == "file":
        return _damage(raw, kind, where, value)
    doc = orjson.loads(raw)
    holder = doc["kdf"] if field == "salt" else doc
    text = holder[field]
    if kind in ("flip", "set") and isinstance(text, str):
        data = bytearray(base64.b64decode(text))
        at = min(int(where * len(data)), len(data) - 1)
        data[at] = data[at] ^ (1 << (value % 8)) if kind == "flip" else value
        holder[field] = base64.b64encode(bytes(data)).decode()
    else:
        holder[field] = _damage(orjson.dumps(text), kind, where, value).decode("latin-1")
    return orjson.dumps(doc)


STORE_COMMANDS = {
    "auth list": ["auth", "list"],
    "backup of a company not connected": ["backup", "--realm", "999"],
}


def test_damaged_token_stores_end_cleanly(cli_data_template: Path) -> None:
    secrets = secrets_of(cli_data_template)

    @FUZZ
    @given(
        field=st.sampled_from(["file", "salt", "check", "nonce", "ciphertext", "kdf", "version"]),
        kind=st.sampled_from(["flip", "set", "truncate", "empty", "garbage"]),
        where=st.floats(0, 1),
        value=st.integers(0, 255),
        command=st.sampled_from(sorted(STORE_COMMANDS)),
        wrong=st.booleans(),
    )
    def case(field: str, kind: str, where: float, value: int, command: str, wrong: bool) -> None:
        with copy_of(cli_data_template) as data:
            store = data / "secrets" / "tokens.enc"
            store.write_bytes(_damage_store(store.read_bytes(), field, kind, where, value))
            lake = tree(data / "lake")
            env = {"QBO_PIPELINE_PASSPHRASE": PASSPHRASE} if wrong else {}
            result = run(data, *STORE_COMMANDS[command], **env)
            assert_clear(result, secrets, lake, data)
            assert result.exit_code != 0 or not wrong

    case()
