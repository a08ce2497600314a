"""Attachments: ``POST /upload`` (multipart) and ``GET /download/{id}``.

An upload carries pairs of parts ``file_metadata_NN`` (the Attachable JSON: ``AttachableRef``,
``FileName``, ``ContentType``...) and ``file_content_NN`` (the bytes). Each pair becomes an
Attachable whose bytes the store keeps; the answer is ``{"AttachableResponse": [...]}`` with one
``Attachable`` or ``Fault`` per pair, as the captures show.

``TempDownloadUri`` is a presigned link served by the sandbox itself
(``/_sandbox/files/{realm}/{id}?signature=...``); ``GET /download/{id}`` answers with that link as
plain text, as QBO does.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.sandbox import faults
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.operations import Operations

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
"""QBO's attachment size limit."""


def sign(secret: bytes, realm_id: str, record_id: str) -> str:
    """The signature of a presigned download link."""
    return hmac.new(secret, f"{realm_id}/{record_id}".encode(), hashlib.sha256).hexdigest()[:32]


def download_url(base_url: str, secret: bytes, realm_id: str, record_id: str) -> str:
    """The presigned link of an attachment's bytes."""
    signature = sign(secret, realm_id, record_id)
    return (
        f"{base_url.rstrip('/')}/_sandbox/files/{realm_id}/{record_id}"
        f"?X-Amz-Expires=900&signature={signature}"
    )


def upload(
    ops: Operations,
    parts: dict[str, tuple[bytes, str | None, str | None]],
    *,
    base_url: str,
    secret: bytes,
) -> dict[str, Any]:
    """Store uploaded files; returns ``{"AttachableResponse": [...]}`` without ``time``.

    Args:
        ops: The realm's write rules.
        parts: Form part name -> (bytes, filename, content type).
        base_url: The sandbox's base URL, for the presigned links.
        secret: The key that signs them.

    Raises:
        SandboxFault: When the request carries no file.
    """
    suffixes = sorted(
        {name.rsplit("_", 1)[-1] for name in parts if name.startswith("file_content_")}
    )
    if not suffixes:
        raise faults.required_missing("file_content_01")
    responses: list[dict[str, Any]] = []
    for suffix in suffixes:
        try:
            responses.append(
                {"Attachable": _one(ops, parts, suffix, base_url=base_url, secret=secret)}
            )
        except SandboxFault as fault:
            responses.append({"Fault": fault.fault_object()})
    return {"AttachableResponse": responses}


def _one(
    ops: Operations,
    parts: dict[str, tuple[bytes, str | None, str | None]],
    suffix: str,
    *,
    base_url: str,
    secret: bytes,
) -> dict[str, Any]:
    content, filename, content_type = parts[f"file_content_{suffix}"]
    metadata: dict[str, Any] = {}
    raw_meta = parts.get(f"file_metadata_{suffix}")
    if raw_meta is not None:
        try:
            metadata = orjson.loads(raw_meta[0])
        except orjson.JSONDecodeError:
            raise faults.request_error(
                f"file_metadata_{suffix} is not valid JSON Attachable metadata."
            ) from None
        if not isinstance(metadata, dict):
            raise faults.request_error(f"file_metadata_{suffix} must be a JSON object.")
    for ref in metadata.get("AttachableRef") or []:
        entity_ref = ref.get("EntityRef") if isinstance(ref, dict) else None
        if not isinstance(entity_ref, dict):
            continue
        ref.setdefault("IncludeOnSend", False)
        target, target_id = entity_ref.get("type"), entity_ref.get("value")
        try:
            target_ent = entities.get(str(target))
        except entities.UnknownEntityError:
            target_ent = None
        if (
            target_ent is None
            or ops.store.get(ops.realm_id, target_ent.name, str(target_id)) is None
        ):
            raise faults.business_validation(
                f"The entity {target} {target_id} that you are trying to link does not exist. "
                f"{target} {target_id}"
            )
    record = {
        **{k: v for k, v in metadata.items() if k not in ("Id", "SyncToken", "MetaData")},
        "FileName": metadata.get("FileName") or filename or f"upload_{suffix}",
        "ContentType": metadata.get("ContentType") or content_type or "application/octet-stream",
        "Size": len(content),
    }
    with ops.store.transaction():
        created = ops.create("Attachable", record)
        realm = ops.realm_id
        created["FileAccessUri"] = f"/v3/company/{realm}/download/{created['Id']}"
        created["TempDownloadUri"] = download_url(base_url, secret, realm, created["Id"])
        ops.store.put(realm, "Attachable", created)
        ops.store.put_blob(realm, created["Id"], created["ContentType"], content)
    return created
