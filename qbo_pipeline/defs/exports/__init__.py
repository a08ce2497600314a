"""Dagster definitions: exports."""
