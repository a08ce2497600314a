"""The lake: versioned Parquet snapshots of each company (FORMAT.md is the on-disk contract).

Import the parts from their modules: ``qbo_pipeline.lake.lake`` (Lake, RealmLake, SnapshotInfo;
RealmLake answers for ``catalogue``, ``manifests``, ``versions`` and ``verify``), ``fs`` (the
one file layer), ``qbo_pipeline.lake.writer`` (SnapshotWriter), ``qbo_pipeline.lake.records``
(canonical JSON, hashes, landing rows, schemas), ``qbo_pipeline.lake.lock``, ``retention``,
``gc`` and ``errors``.
"""
