"""A snapshot's manifest: the live keys of each entity, folded from deltas and checkpoints.

Each snapshot stores how its live set differs from its parent's (manifest deltas) and, now and
then, a whole checkpoint; the live set of an entity is the newest checkpoint of its chain folded
with the deltas after it, checked against what the snapshot's commit record says of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from qbo_pipeline.lake import records
from qbo_pipeline.lake.catalogue import SnapshotInfo, check_name
from qbo_pipeline.lake.errors import LakeIntegrityError

if TYPE_CHECKING:
    from qbo_pipeline.lake.lake import RealmLake

_KEYS_SCHEMA = pa.schema([records.MANIFEST_SCHEMA.field(n) for n in ("id", "content_hash")])
_DELTA_SCHEMA = pa.schema([records.MANIFEST_SCHEMA.field(n) for n in ("id", "op", "content_hash")])


class Manifests:
    """The manifests of one realm's snapshots.

    Args:
        realm: The realm (its catalogue, paths and file layer).
    """

    def __init__(self, realm: RealmLake) -> None:
        self.realm = realm
        self.fs = realm.fs
        self.realm_id = realm.realm_id
        self.checked: set[tuple[str, str, str, str]] = set()
        """(snapshot, entity, live count, digest) already checked against the commit record."""

    def read_delta(self, info: SnapshotInfo, entity: str) -> pa.Table | None:
        """A snapshot's manifest delta of an entity (``id, op, content_hash``); None if empty."""
        stats = info.entities.get(entity) or {}
        if not (stats.get("upserts") or stats.get("deletes")):
            return None
        path = self.realm.manifest_path(info.snapshot_id, entity)
        try:
            table = self.fs.read_parquet(path, columns=_DELTA_SCHEMA.names, whole_file=True)
        except (FileNotFoundError, OSError) as exc:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {info.snapshot_id}: manifest delta of {entity}"
                f" is missing or unreadable: {exc}"
            ) from None
        return self.fs.conform(table, _DELTA_SCHEMA, path)

    def entity_manifest(self, snapshot_id: str, entity: str) -> pa.Table:
        """The live ``id, content_hash`` of one entity in a snapshot, sorted by id.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
        """
        info = self.realm.info(snapshot_id)
        check_name("entity", entity)
        return self.live(info, self.realm.chain(info.snapshot_id), entity)

    def fold(self, chain: Sequence[SnapshotInfo], entity: str) -> pa.Table:
        """An entity's live ``id, content_hash`` at the chain's end, not checked."""
        session = self.fs.session
        if session is None:
            return fold_deltas(list(self.fold_parts(chain, entity)))
        key = ("fold", self.realm_id, entity, tuple(link.snapshot_id for link in chain))
        return session.fold(key, lambda: fold_deltas(list(self.fold_parts(chain, entity))))

    def live(self, info: SnapshotInfo, chain: Sequence[SnapshotInfo], entity: str) -> pa.Table:
        """An entity's live keys in a snapshot, checked against the snapshot's commit record.

        Reading a snapshot checks what its commit record says of each entity read: the live
        count and the manifest digest (FORMAT.md, invariant 4), once per snapshot and entity.
        An edited commit record, or a manifest delta or checkpoint changed under it, is
        reported instead of read (the record versions themselves are ``verify``'s to check).

        Raises:
            LakeIntegrityError: Naming the snapshot, the entity and the commit record.
        """
        live = self.fold(chain, entity)
        stats = info.entities.get(entity)
        if stats is None:
            return live
        count, expected = stats.get("live"), stats.get("digest")
        checked = (info.snapshot_id, entity, str(count), str(expected))
        if checked in self.checked:
            return live
        where = (
            f"realm {self.realm_id} snapshot {info.snapshot_id}: {entity} does not match its "
            f"commit record {self.fs.url(self.realm.commit_path(info.snapshot_id))}"
        )
        hint = "; the record or the snapshot's files were changed: run `qbo-backup verify`"
        if count is not None and str(live.num_rows) != str(count):
            raise LakeIntegrityError(
                f"{where} ({live.num_rows} live records, it says {count}){hint}"
            )
        if expected is not None:
            digest = records.table_digest(live["id"], live["content_hash"])
            if digest != expected:
                raise LakeIntegrityError(
                    f"{where} (manifest digest {digest}, it says {expected}){hint}"
                )
        self.checked.add(checked)
        return live

    def fold_parts(self, chain: Sequence[SnapshotInfo], entity: str) -> Iterator[pa.Table]:
        """The parts whose fold is the entity's live set at the chain's end (``seq`` added).

        The newest checkpoint of the chain (as upserts), then the deltas after it; without a
        checkpoint, every delta of the chain.
        """
        start = 0
        for seq in range(len(chain) - 1, -1, -1):
            if (chain[seq].entities.get(entity) or {}).get("checkpoint"):
                base = self.read_checkpoint(chain[seq], entity)
                if base is not None:
                    start = seq + 1
                    if base.num_rows:
                        yield base.append_column("seq", pa.array([seq] * base.num_rows, pa.int32()))
                    break
        for seq in range(start, len(chain)):
            delta = self.read_delta(chain[seq], entity)
            if delta is not None and delta.num_rows:
                yield delta.append_column("seq", pa.array([seq] * delta.num_rows, pa.int32()))

    def read_checkpoint(self, info: SnapshotInfo, entity: str) -> pa.Table | None:
        """A checkpoint as ``id, op, content_hash`` upserts; None when its file is gone.

        A checkpoint only speeds the fold up (the deltas stay complete), so a missing one
        makes the fold start from an older checkpoint or the root instead.
        """
        path = self.realm.checkpoint_path(info.snapshot_id, entity)
        try:
            table = self.fs.read_parquet(path, columns=["id", "content_hash"], whole_file=True)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {info.snapshot_id}: checkpoint of {entity}"
                f" is unreadable: {exc}"
            ) from None
        table = self.fs.conform(table, _KEYS_SCHEMA, path)
        ops = pa.array([records.UPSERT] * table.num_rows, pa.string())
        return pa.table(
            {"id": table["id"], "op": ops, "content_hash": table["content_hash"]},
        )

    def manifest(
        self, snapshot_id: str, entities: Sequence[str] | None = None, *, checked: bool = True
    ) -> pa.Table:
        """The rebuilt manifest of a snapshot: ``entity, id, content_hash``, sorted by both.

        Args:
            snapshot_id: A committed, live snapshot.
            entities: Only these entities (default: every entity of the snapshot).
            checked: Check each entity against the commit record (live count and digest);
                False for a verifier that compares them itself.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
            LakeIntegrityError: If, checked, an entity does not match the commit record.
        """
        info = self.realm.info(snapshot_id)
        chain = self.realm.chain(info.snapshot_id)
        names = sorted(entities) if entities is not None else sorted(info.entities)
        tables = []
        for name in names:
            check_name("entity", name)
            table = self.live(info, chain, name) if checked else self.fold(chain, name)
            tables.append(
                pa.table(
                    {
                        "entity": pa.array([name] * table.num_rows, pa.string()),
                        "id": table["id"],
                        "content_hash": table["content_hash"],
                    },
                    schema=records.LIVE_MANIFEST_SCHEMA,
                )
            )
        if not tables:
            return records.LIVE_MANIFEST_SCHEMA.empty_table()
        return pa.concat_tables(tables)


def fold_deltas(parts: Sequence[pa.Table]) -> pa.Table:
    """Fold manifest deltas (``id, op, content_hash, seq``) into the live ``id, content_hash``.

    The op with the highest ``seq`` wins per id; ``delete`` removes the id. Sorted by id.
    """
    empty = pa.table({"id": pa.array([], pa.string()), "content_hash": pa.array([], pa.string())})
    if not parts:
        return empty
    if len(parts) == 1:
        table = parts[0]
    else:
        table = pa.concat_tables(parts).sort_by([("id", "ascending"), ("seq", "descending")])
        ids = table["id"].combine_chunks()
        if len(ids) > 1:
            first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
            keep = pa.concat_arrays([pa.array([True]), first])
            table = table.filter(keep)
    table = table.filter(pc.equal(table["op"], records.UPSERT))
    table = table.select(["id", "content_hash"])
    if len(parts) == 1:
        table = table.sort_by("id")
    return table.combine_chunks()
