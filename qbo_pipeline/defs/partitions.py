"""Partitions shared by the domains: one partition per connected QBO company (realm id)."""

from __future__ import annotations

import dagster as dg

realms = dg.DynamicPartitionsDefinition(name="realms")
"""QBO realm ids; registered by the realm discovery sensor from the connected companies."""
