"""Dagster definitions, one folder per domain: ingest, warehouse, exports, restore."""
