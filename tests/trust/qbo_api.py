"""A minimal QBO API client for driving the sandbox the way another app would.

The lifecycle tests change the company only through this: plain HTTP calls with an OAuth bearer
token, independent of the product's own client (``qbo_pipeline.qbo``), so that a bug in the
product's client cannot hide a change it would have missed.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity

MINOR_VERSION = "75"


class ApiFault(RuntimeError):
    """The API answered with a Fault."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {str(body)[:400]}")

    @property
    def code(self) -> str:
        """QBO's fault code of the first error (``"610"``, ``"5010"``, ...), or ``""``."""
        try:
            errors = self.body["Fault"]["Error"]
            return str(errors[0].get("code", ""))
        except (KeyError, IndexError, TypeError):
            return ""


class QboApi:
    """Reads and writes one company over HTTP with a bearer token (refreshed on 401)."""

    def __init__(self, base_url: str, realm_id: str, tokens: dict[str, Any], auth: tuple) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm_id = realm_id
        self.tokens = dict(tokens)
        self.auth = auth
        self.session = requests.Session()

    def _refresh(self) -> None:
        answer = self.session.post(
            f"{self.base_url}/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": self.tokens["refresh_token"]},
            auth=self.auth,
            headers={"Accept": "application/json"},
            timeout=30,
        )
        answer.raise_for_status()
        self.tokens = answer.json()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        files: Any = None,
    ) -> dict[str, Any]:
        """One API call under ``/v3/company/<realm>/``; raises :class:`ApiFault` on a Fault."""
        url = f"{self.base_url}/v3/company/{self.realm_id}/{path}"
        query = {"minorversion": MINOR_VERSION, **(params or {})}
        if method == "POST":
            query.setdefault("requestid", uuid.uuid4().hex)
        for attempt in (1, 2):
            answer = self.session.request(
                method,
                url,
                params=query,
                json=json,
                files=files,
                headers={
                    "Authorization": f"Bearer {self.tokens['access_token']}",
                    "Accept": "application/json",
                },
                timeout=60,
            )
            if answer.status_code == 401 and attempt == 1:
                self._refresh()
                continue
            break
        try:
            body = answer.json()
        except ValueError:
            body = answer.text
        if answer.status_code >= 400 or (isinstance(body, dict) and "Fault" in body):
            raise ApiFault(answer.status_code, body)
        return body

    # --- reads -----------------------------------------------------------------------------

    def query(self, statement: str) -> list[dict[str, Any]]:
        """Every row of a query, paged 1000 at a time."""
        rows: list[dict[str, Any]] = []
        start = 1
        while True:
            text = f"{statement} STARTPOSITION {start} MAXRESULTS 1000"
            answer = self.call("GET", "query", params={"query": text})["QueryResponse"]
            page = next((v for k, v in answer.items() if isinstance(v, list)), [])
            rows.extend(page)
            if len(page) < 1000:
                return rows
            start += 1000

    def all(self, entity: Entity, where: str = "") -> list[dict[str, Any]]:
        """Every record of an entity, inactive ones included where it has them."""
        clauses = [where] if where else []
        if entity.has_active:
            clauses.append("Active IN (true, false)")
        text = f"SELECT * FROM {entity.name}"
        if clauses:
            text += " WHERE " + " AND ".join(clauses)
        return self.query(text)

    def read(self, entity: Entity, record_id: str) -> dict[str, Any]:
        """One record by id."""
        return self.call("GET", f"{entity.resource}/{record_id}")[entity.json_key]

    # --- writes ----------------------------------------------------------------------------

    def create(self, entity: Entity, body: dict[str, Any]) -> dict[str, Any]:
        """POST a new record; returns it as stored."""
        return self.call("POST", entity.resource, json=body)[entity.json_key]

    def update(self, entity: Entity, body: dict[str, Any], *, sparse: bool) -> dict[str, Any]:
        """A full or sparse update (``body`` names Id and SyncToken)."""
        return self.call("POST", entity.resource, json={**body, "sparse": sparse})[entity.json_key]

    def delete(self, entity: Entity, record: dict[str, Any]) -> None:
        """Hard-delete a record."""
        self.call(
            "POST",
            entity.resource,
            params={"operation": "delete"},
            json={"Id": record["Id"], "SyncToken": record["SyncToken"]},
        )

    def void(self, entity: Entity, record: dict[str, Any]) -> dict[str, Any]:
        """Void a transaction the way its entity is voided."""
        assert entity.void_operation is not None
        params = dict(p.split("=", 1) for p in entity.void_operation.split("&"))
        body: dict[str, Any] = {"Id": record["Id"], "SyncToken": record["SyncToken"]}
        if params.get("include") == "void":
            body["sparse"] = True
        return self.call("POST", entity.resource, params=params, json=body)[entity.json_key]

    def upload(self, name: str, data: bytes, attach_to: dict[str, str]) -> dict[str, Any]:
        """Upload a file as an Attachable linked to one record."""
        import json

        meta = {
            "FileName": name,
            "ContentType": "text/plain",
            "AttachableRef": [{"EntityRef": attach_to}],
        }
        files = {
            "file_metadata_01": ("attachment.json", json.dumps(meta), "application/json"),
            "file_content_01": (name, data, "text/plain"),
        }
        answer = self.call("POST", "upload", files=files)
        first = answer["AttachableResponse"][0]
        if "Fault" in first:
            raise ApiFault(200, first)
        return first["Attachable"]


def entity(name: str) -> Entity:
    """The catalogue's entity."""
    return entities.ENTITIES[name]
