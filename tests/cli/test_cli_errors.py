"""One clear error path (issue #18): a user error is one line naming the problem, and an exit code.

Each case below used to print a traceback of about 80 lines before its message (or to succeed
when it should not). They run on a real lake, written by ``qbo-backup backup`` from the embedded
sandbox, and a real token store.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import OTHER, REALM, run, tree


def one_line_error(result: Any, code: int, *words: str) -> str:
    """The command failed with ``code`` and said why on one line, with no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def data(cli_data_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a data folder written by ``qbo-backup backup`` (cli_helpers.build_data)."""
    shutil.copytree(cli_data_template, tmp_path / "data")
    return tmp_path / "data"


def realm_dir(data: Path, realm: str = REALM) -> Path:
    return data / "lake" / f"realm={realm}"


def commits(data: Path, realm: str = REALM) -> list[Path]:
    return sorted((realm_dir(data, realm) / "commits").glob("*.json"))


# ---- the token store -------------------------------------------------------------------------

COMMANDS = {
    "backup": ["backup"],
    "restore": ["restore", "plan", "--snapshot", "latest", "--all", "--realm", REALM],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_wrong_passphrase_is_one_line_and_a_configuration_error(data: Path, command: str) -> None:
    lake = tree(data / "lake")
    passphrase = "not the passphrase of this store"
    result = run(data, *COMMANDS[command], QBO_PIPELINE_PASSPHRASE=passphrase)
    line = one_line_error(result, 2, "wrong passphrase", str(data / "secrets" / "tokens.enc"))
    assert passphrase not in result.output and passphrase not in line
    assert tree(data / "lake") == lake


def _flip_ciphertext(raw: bytes) -> bytes:
    doc = orjson.loads(raw)
    sealed = bytearray(base64.b64decode(doc["ciphertext"]))
    sealed[len(sealed) // 2] ^= 0x01
    doc["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    return orjson.dumps(doc)


def _flip_middle_byte(raw: bytes) -> bytes:
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x01
    return bytes(flipped)


DAMAGE = {
    "truncated": lambda raw: raw[: len(raw) // 2],
    "empty": lambda raw: b"",
    "garbage": lambda raw: b"\x00\x9fnot a token store\xff" * 8,
    "flipped ciphertext": _flip_ciphertext,
    "flipped byte": _flip_middle_byte,
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_token_store_is_one_line_naming_the_file(
    data: Path, command: str, damage: str
) -> None:
    store = data / "secrets" / "tokens.enc"
    damaged = DAMAGE[damage](store.read_bytes())
    store.write_bytes(damaged)
    lake = tree(data / "lake")
    result = run(data, *COMMANDS[command])
    one_line_error(result, 1, f"the token store {store} is damaged")
    assert tree(data / "lake") == lake
    assert store.read_bytes() == damaged  # left as it was found, for whoever repairs it


def _flip_header(raw: bytes, field: str) -> bytes:
    doc = orjson.loads(raw)
    holder = doc["kdf"] if field == "salt" else doc
    value = bytearray(base64.b64decode(holder[field]))
    value[len(value) // 2] ^= 0x01
    holder[field] = base64.b64encode(bytes(value)).decode()
    return orjson.dumps(doc)


@pytest.mark.parametrize("field", ["salt", "check"])
@pytest.mark.parametrize("command", [*COMMANDS, "auth list"])
def test_a_tampered_salt_or_check_is_a_damaged_store_not_a_wrong_passphrase(
    data: Path, command: str, field: str
) -> None:
    store = data / "secrets" / "tokens.enc"
    store.write_bytes(_flip_header(store.read_bytes(), field))
    args = COMMANDS.get(command, ["auth", "list"])
    line = one_line_error(run(data, *args), 1, f"the token store {store} is damaged")
    assert "wrong passphrase" not in line


# ---- companies -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["snapshots", "backup"])
def test_a_company_that_is_not_connected_is_named_as_such(data: Path, command: str) -> None:
    lake = tree(data / "lake")
    result = run(data, command, "--realm", "999")
    one_line_error(result, 2, "company 999 is not connected")
    assert tree(data / "lake") == lake


def test_snapshots_of_a_connected_company_not_backed_up_yet(data: Path) -> None:
    shutil.rmtree(realm_dir(data, OTHER))
    result = run(data, "snapshots", "--realm", OTHER)
    assert result.exit_code == 0, result.output
    assert f"no snapshots of company {OTHER}" in result.output
    assert f"qbo-backup backup --realm {OTHER}" in result.output


# ---- names that cannot be realms -------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["snapshots", "--realm", "../../etc"], ["unlock", "../../etc"]], ids=" ".join
)
def test_a_realm_id_that_climbs_out_of_the_lake_is_a_usage_error(
    data: Path, args: list[str]
) -> None:
    lake = tree(data / "lake")
    one_line_error(run(data, *args), 2, "invalid realm id '../../etc'")
    assert tree(data / "lake") == lake
    assert not (data / "etc").exists()


# ---- damaged lake files ----------------------------------------------------------------------


@pytest.mark.parametrize("area", ["versions", "manifests"])
@pytest.mark.parametrize("command", ["verify", "export"])
def test_a_truncated_parquet_file_is_named(data: Path, command: str, area: str) -> None:
    first = commits(data)[0].stem
    damaged = realm_dir(data) / area / f"snapshot={first}" / "Invoice.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-200])
    lake = tree(data / "lake")
    args = ["verify", "--realm", REALM] if command == "verify" else ["export", "--realm", REALM]
    args += ["--snapshot", first]
    if command == "export":
        args += ["--output", str(data.parent / "exports")]
    result = run(data, *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert str(damaged) in result.stderr and "damaged, truncated or not a Parquet file" in (
        result.stderr
    )
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert tree(data / "lake") == lake


def _rewrite(path: Path, change: Any) -> None:
    """Rewrite a Parquet file as valid Parquet whose contents are not what the lake wrote."""
    path.write_bytes(b"")
    pq.write_table(change(), path)


def _invalid_utf8_ids(table: pa.Table) -> pa.Table:
    bad = pa.array([b"\xe2\x28\xa1"] * table.num_rows, pa.binary()).view(pa.string())
    return table.set_column(table.column_names.index("id"), "id", bad)


MANIFEST_DAMAGE = {
    "a column renamed": lambda table: table.rename_columns(
        [name.replace("content_hash", "content_hasx") for name in table.column_names]
    ),
    "a column retyped": lambda table: table.set_column(
        table.column_names.index("id"), "id", pa.array([[1]] * table.num_rows)
    ),
    "ids not UTF-8": _invalid_utf8_ids,
}


@pytest.mark.parametrize("damage", MANIFEST_DAMAGE)
@pytest.mark.parametrize("command", ["verify", "export"])
def test_a_parquet_file_with_the_wrong_contents_is_named(
    data: Path, command: str, damage: str
) -> None:
    """Found by the fuzz test: valid Parquet, but not the columns or strings the lake wrote."""
    first = commits(data)[0].stem
    damaged = realm_dir(data) / "manifests" / f"snapshot={first}" / "Invoice.parquet"
    table = pq.read_table(damaged)
    _rewrite(damaged, lambda: MANIFEST_DAMAGE[damage](table))
    lake = tree(data / "lake")
    args = [command, "--realm", REALM, "--snapshot", first]
    result = run(data, *args, *(["--entities", "Invoice"] if command == "export" else []))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"{damaged} is damaged" in result.stderr, result.stderr
    assert "unexpected" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert tree(data / "lake") == lake


def _flip_at(raw: bytes, marker: bytes, offset: int) -> bytes:
    at = raw.index(marker) + len(marker) + offset
    flipped = bytearray(raw)
    flipped[at] ^= 0x01
    return bytes(flipped)


COMMIT_FLIPS = {
    "first byte": lambda raw: _flip_at(raw, b"", 0),
    "last byte": lambda raw: _flip_at(raw, raw[:-1], 0),
    "in the snapshot id": lambda raw: _flip_at(raw, b'"snapshot_id":"', 3),
    "in the server time": lambda raw: _flip_at(raw, b'"server_time":"', 13),
    "a quote": lambda raw: _flip_at(raw, b'"kind":', 0),
}


@pytest.mark.parametrize("flip", COMMIT_FLIPS)
def test_snapshots_names_a_commit_record_with_a_flipped_byte(data: Path, flip: str) -> None:
    record = commits(data)[-1]
    record.write_bytes(COMMIT_FLIPS[flip](record.read_bytes()))
    lake = tree(data / "lake")
    one_line_error(run(data, "snapshots"), 1, f"commit record {record} is damaged", REALM)
    assert tree(data / "lake") == lake


def _edit_commit(path: Path, change: Any) -> None:
    record = json.loads(path.read_text())
    change(record["entities"]["Invoice"])
    path.write_text(json.dumps(record))


COMMIT_EDITS = {
    "live count": lambda stats: stats.update(live=stats["live"] + 1),
    "digest": lambda stats: stats.update(digest="0123456789abcdef"),
    "delta dropped": lambda stats: stats.update(upserts=0, deletes=0),
}


@pytest.mark.parametrize("edit", COMMIT_EDITS)
def test_export_checks_the_commit_record_of_what_it_reads(data: Path, edit: str) -> None:
    first = commits(data)[0]
    _edit_commit(first, COMMIT_EDITS[edit])
    lake = tree(data / "lake")
    exports = data.parent / "exports"
    args = ["export", "--realm", REALM, "--snapshot", first.stem, "-e", "Invoice"]
    result = run(data, *args, "--output", str(exports))
    one_line_error(
        result, 1, f"snapshot {first.stem}: Invoice does not match its commit record {first}"
    )
    assert "qbo-backup verify" in result.stderr
    assert tree(data / "lake") == lake
    assert not list(exports.rglob("*.csv"))
    # Another entity of the same snapshot, and the later snapshot, still export.
    other = run(data, "export", "--realm", REALM, "--snapshot", first.stem, "-e", "Customer")
    assert other.exit_code == 0, other.output


# ---- restore ---------------------------------------------------------------------------------


def _plan(data: Path) -> Path:
    plans = [p for p in (realm_dir(data) / "restore").iterdir() if (p / "plan.json").exists()]
    assert len(plans) == 1
    return plans[0]


@pytest.mark.parametrize("realm", [OTHER, "999"])
def test_restore_apply_of_a_plan_whose_realm_was_edited_refuses_before_approving(
    data: Path, realm: str
) -> None:
    folder = _plan(data)
    plan = json.loads((folder / "plan.json").read_text())
    plan["realm_id"] = realm
    (folder / "plan.json").write_text(json.dumps(plan))
    before = tree(data / "lake")
    result = run(data, "restore", "apply", folder.name, "--approve", "--as", "Mallory")
    one_line_error(result, 1, f"plan {folder.name}", "edited or moved", realm)
    assert not (folder / "approval.json").exists()
    assert tree(data / "lake") == before


# ---- bad arguments ---------------------------------------------------------------------------


BAD_ARGUMENTS = {
    "backup --full --incremental": ["choose one of --full and --incremental"],
    "export --format pdf": ["unknown export format 'pdf'", "qbo-backup export --help"],
    "prune --daily -1": ["'--daily'", "qbo-backup prune --help"],
    "no-such-command": ["No such command 'no-such-command'"],
    "--bogus": ["No such option: --bogus", "qbo-backup --help"],
    "--debug --bogus": ["No such option: --bogus", "qbo-backup --help"],
}


@pytest.mark.parametrize("args", BAD_ARGUMENTS)
def test_a_bad_argument_is_one_line_and_a_usage_error(data: Path, args: str) -> None:
    one_line_error(run(data, *args.split()), 2, *BAD_ARGUMENTS[args])


# ---- --debug ---------------------------------------------------------------------------------


def test_the_traceback_comes_only_with_debug(data: Path) -> None:
    quiet = run(data, "snapshots", "--realm", "../../etc")
    assert "Traceback" not in quiet.output
    for result in (
        run(data, "--debug", "snapshots", "--realm", "../../etc"),
        run(data, "snapshots", "--realm", "../../etc", QBO_DEBUG="1"),
    ):
        assert result.exit_code == 2
        assert "Traceback (most recent call last)" in result.stderr
        assert "InvalidNameError" in result.stderr
        assert result.stderr.strip().splitlines()[-1] == "error: invalid realm id '../../etc'"
