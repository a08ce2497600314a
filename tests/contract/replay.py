"""A tiny QBO replay server: real HTTP on a free loopback port, answering with captured bytes.

Each request is matched to a capture of ``tests/fixtures/samples`` by method, path and query
string (``minorversion`` and ``requestid`` are ignored, as they do not change QBO's answer) and
answered with the capture's exact bytes, with the HTTP status and content type QBO used for it
(:func:`reply_for`). Every request is recorded (:attr:`ReplayServer.received`) so tests can
assert on what the product sent; a request nothing matches gets a 404 and is kept in
:attr:`ReplayServer.unmatched`.

Three kinds of route:

* :meth:`ReplayServer.route`: one method and path (and query parameters) -> one capture;
* :meth:`ReplayServer.route_query`: one query statement (GET ``/query?query=`` or POST
  ``application/text``) -> one capture; statements match case- and whitespace-insensitively;
* :meth:`ReplayServer.company`: a company made of captured query answers, one per entity, for
  the product's paging and batched reads: ``COUNT(*)`` and ``SELECT *`` pages of any size, alone
  or in batches of queries. A page that holds the whole capture is its exact bytes, a page past
  the end the exact bytes of ``query_empty_past_end.json``; a count without its own capture, a
  slice of a capture and a batch answer are put in the envelopes those captures show
  (``{"QueryResponse": {...}, "time": ...}``, ``batch_response_mixed.json``) around the
  captured records themselves.

A write route can carry a check (:func:`write_check`) that answers QBO's own fault captures when a
body breaks the rules QBO applies to writes (an update names Id and the live SyncToken, the sparse
flag is a boolean, nothing QBO owns is sent back).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.conftest import SAMPLES

REALM = "9341453908059321"
"""The realm id the replayed company answers for."""

IGNORED_PARAMS = frozenset({"minorversion", "requestid"})
"""Query parameters that do not change QBO's answer, left out of matching."""

INTUIT_TID = "1-5f7368ea-replay"
"""The ``intuit_tid`` header every reply carries, as QBO's replies do."""

JSON = "application/json;charset=UTF-8"
XML = "application/xml;charset=UTF-8"

_FAULT_STATUS = {
    "error_401_authentication_3200.json": 401,
    "error_429_throttle_3001.xml": 429,
    "extra/error_systemfault_10000.xml": 500,
}
"""Errors QBO does not answer with 400 (every other ``error_*`` capture is a 400)."""


@dataclass(frozen=True)
class Reply:
    """What the server sends back."""

    status: int
    content_type: str
    body: bytes
    capture: str | None = None


def reply_for(capture: str, status: int | None = None) -> Reply:
    """A capture's exact bytes with the status and content type QBO sent it with."""
    body = (SAMPLES / capture).read_bytes()
    name = capture.rsplit("/", 1)[-1]
    if status is None:
        status = _FAULT_STATUS.get(capture, 400 if name.startswith("error_") else 200)
    kind = XML if capture.endswith(".xml") else JSON
    return Reply(status, kind, body, capture)


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def statement(self) -> str | None:
        """The query statement, sent in the URL or as an ``application/text`` body."""
        if "query" in self.params:
            return self.params["query"]
        if self.path.endswith("/query") and self.method == "POST":
            return self.body.decode("utf-8")
        return None


Check = Callable[[Received], Reply | None]
"""Looks at a request; returns a fault reply to send instead of the route's, or None."""


def _normal(statement: str) -> str:
    return " ".join(statement.replace("(", " ( ").replace(")", " ) ").split()).lower()


def _key(method: str, path: str, params: Mapping[str, str]) -> tuple[str, str, frozenset]:
    kept = frozenset((k, v) for k, v in params.items() if k not in IGNORED_PARAMS)
    return method.upper(), path.rstrip("/"), kept


_SELECT = re.compile(
    r"^select\s+(?P<what>\*|count\s*\(\s*\*\s*\))\s+from\s+(?P<entity>\w+)"
    r"(?:\s+where\s+(?P<where>.*?))?"
    r"(?:\s+(?:startposition\s+(?P<start>\d+)|maxresults\s+(?P<max>\d+)))*\s*$",
    re.IGNORECASE,
)
_ALL_STATES = _normal("Active IN (true, false)")


@dataclass
class CaptureCompany:
    """A company whose entities are captured query answers (see the module docstring).

    Attributes:
        answers: Entity name -> the capture of its ``SELECT *`` answer.
        counts: Entity name -> a capture of its ``COUNT(*)`` answer, where one exists.
        count_offset: Added to every count answered (a COUNT that disagrees with the pages).
    """

    answers: dict[str, str]
    counts: dict[str, str] = field(default_factory=dict)
    count_offset: int = 0

    def records(self, entity: str) -> list[dict[str, Any]]:
        """The captured records of an entity."""
        doc = json.loads((SAMPLES / self.answers[entity]).read_bytes())
        return list(doc["QueryResponse"].get(entity, []))

    def answer(self, statement: str) -> Reply | None:
        """QBO's answer to a statement about this company, or None if it is not about it."""
        found = _SELECT.match(statement.strip())
        if not found:
            return None
        names = {name.lower(): name for name in self.answers}
        entity = names.get(found["entity"].lower())
        where = _normal(found["where"] or "")
        if entity is None or where not in ("", _ALL_STATES):
            return None
        records = self.records(entity)
        capture = self.answers[entity]
        time = json.loads((SAMPLES / capture).read_bytes()).get("time")
        if found["what"] != "*":
            if entity in self.counts and not self.count_offset:
                return reply_for(self.counts[entity])
            total = len(records) + self.count_offset
            return _json_reply({"QueryResponse": {"totalCount": total}, "time": time})
        start = int(found["start"] or 1)
        size = int(found["max"] or 100)
        if start > len(records):
            return reply_for("query_empty_past_end.json")
        if start == 1 and size >= len(records):
            return reply_for(capture)
        page = records[start - 1 : start - 1 + size]
        envelope = {entity: page, "startPosition": start, "maxResults": len(page)}
        return _json_reply({"QueryResponse": envelope, "time": time})

    def batch(self, body: Any) -> Reply | None:
        """A batch of queries answered item by item, in the shape of
        ``batch_response_mixed.json``: ``{"bId", "QueryResponse"}`` per answered query, and
        ``{"bId", "Fault"}`` with the fault of ``error_invalid_query_4001.json`` for a query
        this company cannot answer. Batches holding writes are not this company's business."""
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(set(i) <= {"bId", "Query"} for i in items):
            return None
        answers = []
        for item in items:
            reply = self.answer(item["Query"])
            if reply is None:
                fault = json.loads((SAMPLES / "error_invalid_query_4001.json").read_bytes())
                answers.append({"Fault": fault["Fault"], "bId": item["bId"]})
                continue
            found = json.loads(reply.body)["QueryResponse"]
            answers.append({"QueryResponse": found, "bId": item["bId"]})
        time = json.loads((SAMPLES / "batch_response_mixed.json").read_bytes())["time"]
        return _json_reply({"BatchItemResponse": answers, "time": time})


def _json_reply(doc: Any) -> Reply:
    return Reply(200, JSON, json.dumps(doc).encode())


def record_reply(key: str, record: Mapping[str, Any], time: str) -> Reply:
    """A captured record in the envelope of QBO's read and write answers (``{key: record,
    "time": ...}``), for writes of entities with no captured write answer."""
    return _json_reply({key: dict(record), "time": time})


class ReplayServer:
    """The replay server; use as a context manager (started on enter, stopped on exit)."""

    def __init__(self, realm_id: str = REALM) -> None:
        self.realm_id = realm_id
        self.received: list[Received] = []
        self.unmatched: list[Received] = []
        self._routes: dict[tuple[str, str, frozenset], tuple[Reply, Check | None]] = {}
        self._queries: dict[str, Reply] = {}
        self._company: CaptureCompany | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def company_path(self) -> str:
        """``/v3/company/{realm}``."""
        return f"/v3/company/{self.realm_id}"

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    # -- routes --------------------------------------------------------------------------------

    def route(
        self,
        method: str,
        path: str,
        capture: str | Reply,
        *,
        params: Mapping[str, str] | None = None,
        status: int | None = None,
        check: Check | None = None,
    ) -> None:
        """Answer ``method path?params`` with a capture (or a :func:`record_reply`).

        ``path`` is relative to the company (``invoice/130``) unless it starts with ``/``.
        """
        full = path if path.startswith("/") else f"{self.company_path}/{path}"
        reply = capture if isinstance(capture, Reply) else reply_for(capture, status)
        self._routes[_key(method, full, params or {})] = (reply, check)

    def route_query(self, statement: str, capture: str, *, status: int | None = None) -> None:
        """Answer a query statement (sent by GET or POST) with a capture."""
        self._queries[_normal(statement)] = reply_for(capture, status)

    def company(self, company: CaptureCompany) -> None:
        """Answer the queries no route matches from a company of captures."""
        self._company = company

    def requests_to(self, method: str, path: str) -> list[Received]:
        """The requests received for a method and company-relative path."""
        full = path if path.startswith("/") else f"{self.company_path}/{path}"
        return [r for r in self.received if r.method == method and r.path == full]

    # -- serving -------------------------------------------------------------------------------

    def _answer(self, request: Received) -> Reply | None:
        found = self._routes.get(_key(request.method, request.path, request.params))
        if found is not None:
            reply, check = found
            fault = check(request) if check is not None else None
            return fault or reply
        if request.path == f"{self.company_path}/batch" and self._company is not None:
            return self._company.batch(request.json())
        statement = request.statement
        if statement is not None and request.path == f"{self.company_path}/query":
            reply = self._queries.get(_normal(statement))
            if reply is None and self._company is not None:
                reply = self._company.answer(statement)
            return reply
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once, as QBO's do

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests assert on :attr:`ReplayServer.received` instead."""

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Received(
                    method=self.command,
                    path=parts.path.rstrip("/"),
                    params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k: v for k, v in self.headers.items()},
                    body=body,
                )
                with server._lock:
                    server.received.append(request)
                reply = server._answer(request)
                if reply is None:
                    with server._lock:
                        server.unmatched.append(request)
                    reply = Reply(
                        404, "text/plain", f"no capture for {self.command} {self.path}".encode()
                    )
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("intuit_tid", INTUIT_TID)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = _serve
            do_POST = _serve

        return Handler


READ_ONLY_FIELDS = frozenset(
    {
        "MetaData",
        "domain",
        "status",
        "time",
        "FullyQualifiedName",
        "Level",
        "BalanceWithJobs",
        "CurrentBalance",
        "CurrentBalanceWithSubAccounts",
        "HomeBalance",
        "UnappliedAmt",
        "RemainingCredit",
        "InvoiceLink",
        "TempDownloadUri",
        "FileAccessUri",
        "ThumbnailFileAccessUri",
        "ThumbnailTempDownloadUri",
    }
)
"""Top-level fields QBO owns (its API reference marks them read-only or system-defined).

QBO ignores most of them when they are sent back (the 2010 capture lists ``MetaData``,
``domain`` and ``InvoiceLink`` among an Invoice's known properties), so refusing them is stricter
than QBO: restore must not depend on QBO ignoring what it owns."""


def write_check(*, live: Mapping[str, str] | None = None) -> Check:
    """A check of create and update bodies against the rules QBO applies to writes.

    Args:
        live: Record Id -> its live SyncToken, for the updates the route expects.

    Returns:
        A check answering QBO's captured faults: 2020 (a required param missing: an update
        without SyncToken), 5010 (a SyncToken that is not the live one), 2010 (an unsupported
        property: a read-only field, or a sparse flag that is not a boolean).
    """
    live = dict(live or {})

    def check(request: Received) -> Reply | None:
        body = request.json()
        if not isinstance(body, dict):
            return reply_for("extra/error_unsupported_property_2010.json")
        if READ_ONLY_FIELDS & set(body):
            return reply_for("extra/error_unsupported_property_2010.json")
        if "sparse" in body and not isinstance(body["sparse"], bool):
            return reply_for("extra/error_unsupported_property_2010.json")
        record_id = body.get("Id")
        if record_id is None:
            if "SyncToken" in body or body.get("sparse") or _assigned_ids(body):
                return reply_for("extra/error_unsupported_property_2010.json")
            return None
        if not isinstance(body.get("SyncToken"), str) or not body["SyncToken"]:
            return reply_for("error_required_param_2020.json")
        if live.get(str(record_id)) != body["SyncToken"]:
            return reply_for("error_stale_object_5010.json")
        return None

    return check


def _assigned_ids(body: Mapping[str, Any]) -> list[str]:
    """The ids QBO assigns to a new record's parts that a create carries: line ids and the
    ids of its addresses (``BillAddr``, ``ShipFromAddr``...; an address id names an address
    of another record)."""
    found = [f"Line[{i}].Id" for i, line in enumerate(body.get("Line") or []) if "Id" in line]
    found += [
        f"{key}.Id"
        for key, value in body.items()
        if key.endswith("Addr") and isinstance(value, dict) and "Id" in value
    ]
    return found
