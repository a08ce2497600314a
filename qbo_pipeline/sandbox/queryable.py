"""Which properties a query may filter on, per entity, as Intuit's entity references say.

QBO answers a WHERE condition on any other property, known or not, with 4001
``QueryValidationError: property 'PrimaryEmailAddr' is not queryable`` (quoted in
ruckus/quickbooks-ruby#403 and intuit/QuickBooks-V3-DotNET-SDK#163), never with an empty page.
The properties each entity takes are catalogue facts (``Entity.filterable`` in
:mod:`qbo_pipeline.entities`). Names compare case-insensitively, as QBO's do; :func:`canonical`
gives the catalogue spelling.
"""

from __future__ import annotations

from functools import cache

from qbo_pipeline import entities

DATE_PROPERTIES = frozenset(
    {"TxnDate", "DueDate", "ExpirationDate", "AsOfDate", "StartDate", "EndDate", "PaymentDate"}
)
"""Filterable properties holding a date: their literals must be real ``YYYY-MM-DD`` dates."""


@cache
def _lookup(entity: str) -> dict[str, str]:
    return {name.lower(): name for name in entities.get(entity).filterable}


def canonical(entity: str, prop: str) -> str | None:
    """The catalogue spelling of a filterable property of ``entity``, or None if it is not one."""
    return _lookup(entity).get(prop.lower())


def filterable(entity: str) -> frozenset[str]:
    """Every property a WHERE condition on ``entity`` may name."""
    return entities.get(entity).filterable
