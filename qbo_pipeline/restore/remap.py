"""Old id -> new id: the map re-created records need, and reference rewriting by catalogue paths.

QBO gives a re-created record a new id. Every later record that referenced the old id (an invoice
line's ``ItemRef``, a payment's ``Line[].LinkedTxn[].TxnId``, a deposit's linked payment) must be
sent with the new one. The paths come from the catalogue's :class:`~qbo_pipeline.entities.Reference`
fields, so remapping covers exactly what the rest of the pipeline calls a reference.

Typed references (``LinkedTxn.TxnType``, ``EntityRef.type``) whose type is not among the
reference's targets are back-links, written by QBO on the other side (an invoice's ``LinkedTxn``
to the payment that paid it): they are dropped from what restore sends and come back when the
record that owns the link is restored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Reference

TEMPLATE_SUFFIX = ".__template__"
"""How the catalogue marks a RecurringTransaction's reference to the transaction it wraps."""


def _canonical(name: str) -> str | None:
    """The catalogue name of an entity as QBO writes it in a type key, or None if unknown."""
    try:
        return entities.get(name).name
    except entities.UnknownEntityError:
        return None


class IdMap:
    """Old id -> new id per entity, serialisable as ``{"Entity:old": "new"}``."""

    def __init__(self, pairs: Mapping[str, str] | None = None) -> None:
        self._map: dict[tuple[str, str], str] = {}
        for key, new in (pairs or {}).items():
            entity, _, old = key.partition(":")
            if not entity or not old:
                raise ValueError(f"id map key {key!r} is not 'Entity:id'")
            self.set(entity, old, str(new))

    def set(self, entity: str, old_id: str, new_id: str) -> None:
        """Record that ``entity`` ``old_id`` is now ``new_id``."""
        self._map[(entity, str(old_id))] = str(new_id)

    def get(self, entity: str, old_id: str) -> str | None:
        """The new id of ``entity`` ``old_id``, or None when it was not re-created or mapped."""
        return self._map.get((entity, str(old_id)))

    def resolve(self, entity: str, old_id: str) -> str:
        """The id to send for ``entity`` ``old_id``: its new id, or itself when unmapped."""
        return self._map.get((entity, str(old_id)), str(old_id))

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __len__(self) -> int:
        return len(self._map)

    def update(self, other: IdMap) -> None:
        """Add every pair of ``other``."""
        self._map.update(other._map)

    def to_json(self) -> dict[str, str]:
        """The map as ``{"Entity:old": "new"}``, sorted."""
        return {f"{e}:{old}": new for (e, old), new in sorted(self._map.items())}


@dataclass(frozen=True)
class ReferenceSite:
    """One reference found in a payload.

    Attributes:
        reference: The catalogue reference it belongs to.
        holder: The object holding the id (mutating it rewrites the payload it came from).
        target: The entity it points at (catalogue name).
        target_id: The id it points at.
        is_dependency: Whether the target must exist before the referrer is created.
        is_backlink: Whether it is a typed link of a type the reference does not depend on.
    """

    reference: Reference
    holder: dict[str, Any]
    target: str
    target_id: str
    is_dependency: bool
    is_backlink: bool


def _parents(node: Any, parts: list[str]) -> Iterator[tuple[dict[str, Any], str]]:
    """Yield ``(object, key)`` for every object that holds the path's last key."""
    if isinstance(node, list):
        for item in node:
            yield from _parents(item, parts)
        return
    if not isinstance(node, dict):
        return
    head = parts[0]
    key = head[:-2] if head.endswith("[]") else head
    if len(parts) == 1:
        if key in node:
            yield node, key
        return
    if key in node:
        yield from _parents(node[key], parts[1:])


def reference_holders(payload: dict[str, Any], path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """``(object, key)`` for every object of ``payload`` holding the catalogue ``path``'s last key.

    ``path`` is a reference's path (``Line[].SalesItemLineDetail.TaxCodeRef``); deleting the
    key from the object takes the reference out of the payload.
    """
    yield from _parents(payload, path.split("."))


def _holders(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict):
                yield item
    elif isinstance(node, dict):
        yield node


def reference_sites(entity: Entity, payload: dict[str, Any]) -> Iterator[ReferenceSite]:
    """Every reference in ``payload`` (the live objects of the payload, for rewriting)."""
    for ref in entity.references:
        if ref.path.endswith(TEMPLATE_SUFFIX):
            # A recurring template holds the references of the transaction it wraps.
            template = payload.get(ref.path.removesuffix(TEMPLATE_SUFFIX))
            wrapped = entities.ENTITIES.get(ref.targets[0]) if ref.targets else None
            if isinstance(template, dict) and wrapped is not None:
                yield from reference_sites(wrapped, template)
            continue
        for parent, key in _parents(payload, ref.path.split(".")):
            for holder in _holders(parent[key]):
                site = _site(entity, ref, holder)
                if site is not None:
                    yield site


def _site(entity: Entity, ref: Reference, holder: dict[str, Any]) -> ReferenceSite | None:
    target_id = holder.get(ref.id_key)
    if target_id in (None, ""):
        return None
    if ref.type_key:
        raw_type = holder.get(ref.type_key)
        target = _canonical(str(raw_type)) if raw_type else None
        if target is None:
            return None
        backlink = target not in ref.targets
        return ReferenceSite(
            reference=ref,
            holder=holder,
            target=target,
            target_id=str(target_id),
            is_dependency=ref.dependency and not backlink,
            is_backlink=backlink,
        )
    if not ref.targets:
        return None
    return ReferenceSite(
        reference=ref,
        holder=holder,
        target=ref.targets[0],
        target_id=str(target_id),
        is_dependency=ref.dependency,
        is_backlink=False,
    )


def drop_backlinks(entity: Entity, payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` without typed links of types its references do not depend on.

    An empty link list is removed altogether.
    """
    out = copy.deepcopy(payload)
    _drop_backlinks(entity, out)
    return out


def _drop_backlinks(entity: Entity, out: dict[str, Any]) -> None:
    for ref in entity.references:
        if ref.path.endswith(TEMPLATE_SUFFIX):
            template = out.get(ref.path.removesuffix(TEMPLATE_SUFFIX))
            wrapped = entities.ENTITIES.get(ref.targets[0]) if ref.targets else None
            if isinstance(template, dict) and wrapped is not None:
                _drop_backlinks(wrapped, template)
            continue
        if not ref.type_key or not ref.path.endswith("[]"):
            continue
        for parent, key in list(_parents(out, ref.path.split("."))):
            items = parent[key]
            if not isinstance(items, list):
                continue
            kept = [
                item
                for item in items
                if not isinstance(item, dict)
                or _canonical(str(item.get(ref.type_key) or "")) in ref.targets
            ]
            if kept:
                parent[key] = kept
            else:
                del parent[key]


def rewrite(
    entity: Entity, payload: dict[str, Any], id_map: IdMap, *, include_backlinks: bool = False
) -> dict[str, Any]:
    """A copy of ``payload`` with every mapped reference id replaced by its new id.

    Args:
        entity: The payload's entity.
        payload: The record (never modified).
        id_map: Old id -> new id.
        include_backlinks: Also rewrite back-links (for comparing restored records with the
            snapshot; what restore sends has none).
    """
    out = copy.deepcopy(payload)
    for site in list(reference_sites(entity, out)):
        if site.is_backlink and not include_backlinks:
            continue
        new_id = id_map.get(site.target, site.target_id)
        if new_id is not None:
            site.holder[site.reference.id_key] = new_id
    return out


def dependencies(entity: Entity, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(entity, id)`` records that must exist before ``payload`` can be written, in order.

    Self references (``ParentRef``) are included: parents come before their children.
    """
    seen: dict[tuple[str, str], None] = {}
    for site in reference_sites(entity, payload):
        if site.is_dependency:
            seen.setdefault((site.target, site.target_id), None)
    return list(seen)
