"""Partitions shared by the domains: one partition per connected QBO company (realm id)."""

from __future__ import annotations

import dagster as dg

REALMS = "realms"
"""The name of the realm partitions (what the Dagster instance stores them under)."""

realms = dg.DynamicPartitionsDefinition(name=REALMS)
"""QBO realm ids; registered by the realm discovery sensor from the connected companies."""
