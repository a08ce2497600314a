"""Dagster definitions: warehouse."""
