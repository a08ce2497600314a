"""Asset keys of the ingest domain, shared with the downstream domains."""

from __future__ import annotations

import dagster as dg

from qbo_pipeline import entities

PREFIX = "qbo"


def entity_asset_key(entity: str) -> dg.AssetKey:
    """The asset key of one QBO entity's records (``qbo/Invoice``)."""
    return dg.AssetKey([PREFIX, entities.get(entity).name])


def entity_of(key: dg.AssetKey) -> str:
    """The catalogue name behind an ingest asset key."""
    return entities.get(key.path[-1]).name


ENTITY_KEYS: tuple[dg.AssetKey, ...] = tuple(entity_asset_key(e.name) for e in entities.CATALOGUE)
"""Every ingest asset key, in catalogue order."""
