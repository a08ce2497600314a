"""Exports of a company's latest snapshot: one asset per format (CSV, JSON, XML).

The files land under ``<exports_dir>/<Company>/<snapshot_id>/`` with a ``manifest.json`` listing
every file, its rows and its SHA-256 (:func:`qbo_pipeline.exports.export_snapshot`). Re-exporting
a snapshot overwrites its folder cleanly; older snapshots' exports stay.
"""

# No `from __future__ import annotations` here: Dagster reads the annotations of decorated
# functions (context, config and resource parameters) at definition time.

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from qbo_pipeline.defs.ingest.keys import ENTITY_KEYS
from qbo_pipeline.defs.partitions import realms
from qbo_pipeline.defs.resources import LakeResource
from qbo_pipeline.exports import ExportError, ExportResult, export_snapshot
from qbo_pipeline.lake.errors import SnapshotNotFound

PREFIX = "exports"
GROUP = "exports"
FORMATS = {
    "csv": (
        "Flattened CSV per entity (one row per record, headers from the JSON paths), nested "
        "arrays as child CSVs keyed by the parent Id, so no value is lost; dates and amounts "
        "that spreadsheets read as such, formula-like cells neutralised."
    ),
    "json": "Pretty JSON per entity: an array of the records exactly as QBO returned them.",
    "xml": "XML per entity with QBO's v3 element names (IntuitResponse/QueryResponse/<Entity>).",
}


def export_asset_key(fmt: str) -> dg.AssetKey:
    """The asset key of one export format (``exports/csv``)."""
    return dg.AssetKey([PREFIX, fmt])


class ExportConfig(dg.Config):
    """What to export."""

    snapshot: str = Field(
        default="latest",
        description="latest, previous, a snapshot id or unique prefix, or an ISO date "
        "(newest at or before)",
    )
    max_records_per_file: int | None = Field(
        default=None, description="Split an entity's files after this many records"
    )
    bom: bool = Field(default=False, description="Start CSV files with a UTF-8 BOM (Excel)")


@dg.multi_asset(
    name="qbo_exports",
    specs=[
        dg.AssetSpec(
            export_asset_key(fmt),
            deps=ENTITY_KEYS,
            description=f"{text} Written for the company's latest snapshot.",
            group_name=GROUP,
            kinds={fmt, "files"},
            partitions_def=realms,
            skippable=True,
        )
        for fmt, text in FORMATS.items()
    ],
    can_subset=True,
    description="Export one snapshot of a company in the selected formats.",
)
def qbo_exports(
    context: dg.AssetExecutionContext, config: ExportConfig, lake: LakeResource
) -> Iterator[dg.MaterializeResult]:
    """Export the partition's company in every selected format."""
    realm_id = context.partition_key
    formats = [fmt for fmt in FORMATS if export_asset_key(fmt) in context.selected_asset_keys]
    out_dir = lake.exports
    if config.max_records_per_file is not None and config.max_records_per_file < 1:
        raise dg.Failure(description="max_records_per_file must be at least 1")
    try:
        result = export_snapshot(
            lake.realm(realm_id),
            config.snapshot,
            formats=formats,
            out_dir=out_dir,
            max_records=config.max_records_per_file,
            bom=config.bom,
        )
    except (ExportError, SnapshotNotFound) as exc:
        raise dg.Failure(description=f"company {realm_id} was not exported: {exc}") from None
    context.log.info(
        f"exported snapshot {result.snapshot_id} of {result.company} as {', '.join(formats)} "
        f"into {result.folder}: {len(result.files)} files, {result.bytes} bytes"
    )
    for fmt in formats:
        yield dg.MaterializeResult(asset_key=export_asset_key(fmt), metadata=_metadata(result, fmt))


def _metadata(result: ExportResult, fmt: str) -> dict[str, dg.MetadataValue | int | str]:
    files = [f for f in result.files if f.format == fmt or (fmt == "json" and f.format == "jsonl")]
    return {
        "dagster/row_count": sum(result.records.values()),
        "snapshot_id": result.snapshot_id,
        "folder": dg.MetadataValue.path(str(result.folder)),
        "manifest": dg.MetadataValue.path(str(result.manifest_path)),
        "files": len(files),
        "bytes": sum(f.bytes for f in files),
        "entities": len(result.records),
    }
