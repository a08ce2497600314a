"""Current-state models, generated from the entity catalogue: what the books hold now.

The staging models hold one row per record *version* (``staging.stg_invoice_versions``), so a
plain ``sum(balance)`` over them counts every edit of an invoice again. For every catalogue entity
whose versions model exists, the runner adds a view with the records live in each company's
latest snapshot, one row per record:

- ``staging.stg_<entity>_versions``      -> ``marts.<entities>``      (``marts.invoices``)
- ``staging.stg_<entity>_line_versions`` -> ``marts.<entity>_lines``  (``marts.invoice_lines``)

The views keep every column of the versions model and are tested unique on its key without
``content_hash``. A hand-written model of the same name wins over the generated one. The past
states are the ``as_of(entity, snapshot)`` macro's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qbo_pipeline import entities

SCHEMA = "marts"
"""Where the current-state views are published."""

INTERVALS = "intermediate.int_record_intervals"
"""The model that says which version of each record is live in the latest snapshot."""


@dataclass(frozen=True)
class CurrentModel:
    """One generated view: its name, SQL and the versions model it reads."""

    schema: str
    name: str
    sql: str
    versions: str
    """The ``schema.name`` of the versions model it is derived from."""
    test_scope: str = ""
    """The rows an incremental build tests: those of the records whose intervals it wrote."""


def snake(name: str) -> str:
    """``CreditCardPayment`` -> ``credit_card_payment``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def plural(word: str) -> str:
    """The plural of a snake-case noun: ``class`` -> ``classes``, ``entry`` -> ``entries``."""
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def current_models(
    versions_keys: Mapping[str, Sequence[str]], existing: set[str], *, scoped: bool = False
) -> list[CurrentModel]:
    """The current-state views to add to a project.

    Args:
        versions_keys: Every model of the project (``schema.name``) with the columns of its
            ``#UNIQUE_BY`` test that includes ``content_hash`` (empty when it has none).
        existing: Every model key the project's files define (these are never generated).
        scoped: Whether ``int_record_intervals`` is incremental, so that an incremental build
            tests each view over the records whose intervals it wrote (``delta.<intervals>``)
            rather than every row: the others' current version cannot have changed.

    Returns:
        One view per catalogue entity with a ``staging.stg_<entity>_versions`` model and one per
        entity with a ``staging.stg_<entity>_line_versions`` model; none when the project has no
        ``intermediate.int_record_intervals``.

    Raises:
        ValueError: If a versions model's ``#UNIQUE_BY`` does not name ``<entity>_id`` and
            ``content_hash``, so its current rows cannot be keyed.
    """
    if INTERVALS not in versions_keys:
        return []
    out = []
    for entity in entities.CATALOGUE:
        word = snake(entity.name)
        for source, name, what in (
            (f"staging.stg_{word}_versions", plural(word), "records"),
            (f"staging.stg_{word}_line_versions", f"{word}_lines", "lines"),
        ):
            if source not in versions_keys or f"{SCHEMA}.{name}" in existing:
                continue
            key = list(versions_keys[source])
            id_column = f"{word}_id"
            if id_column not in key or "content_hash" not in key:
                raise ValueError(
                    f"model {source} needs a #UNIQUE_BY test naming {id_column} and content_hash "
                    f"for its current-state view {SCHEMA}.{name}; it has {key or 'none'}"
                )
            unique = [c for c in key if c != "content_hash"]
            out.append(
                CurrentModel(
                    schema=SCHEMA,
                    name=name,
                    sql=_sql(entity.name, source, id_column, unique, what),
                    versions=source,
                    test_scope=(
                        f"(realm_id, {id_column}) in (select realm_id, record_id from "
                        f"delta.{INTERVALS.split('.')[1]} where entity = '{entity.name}')"
                        if scoped
                        else ""
                    ),
                )
            )
    return out


def _sql(entity: str, source: str, id_column: str, unique: Sequence[str], what: str) -> str:
    return f"""\
-- {entity} {what} as they are now: {"the" if what == "records" else "the lines of the"} records
-- live in each company's latest snapshot, one row per {what[:-1]} ({source}
-- holds every version; as_of('{entity}', snapshot) gives the records of any snapshot).
-- Generated from the entity catalogue by qbo_pipeline/models/current.py.
-- materialized: view
-- #UNIQUE_BY({", ".join(unique)})
select v.*
from {source} as v
semi join {INTERVALS} as c
    on c.realm_id = v.realm_id
    and c.entity = '{entity}'
    and c.record_id = v.{id_column}
    and c.content_hash = v.content_hash
    and c.valid_to_seq is null"""
