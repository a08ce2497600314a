"""Dagster definitions: restore."""
