"""Counts in plain English: ``1 deletion``, ``2 deletions``, ``1 of 6 records differs``."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in the right number: ``count(1, "deletion")`` is ``1 deletion``."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def verb(n: int, singular: str, plural: str) -> str:
    """The verb that agrees with ``n`` things: ``verb(1, "differs", "differ")``."""
    return singular if n == 1 else plural
