"""Dagster definitions: ingest."""
