"""The QBO v3 API client: one per realm, rate-aware, retrying, with typed faults.

:class:`QBOClient` sends every call through the realm's shared :class:`RealmLimiter`, adds
``Accept: application/json`` and ``minorversion`` (from :data:`entities.MINOR_VERSION`, set in this
one place), refreshes the access token ahead of expiry or once after a 401, and retries with
exponential backoff and full jitter on 429 (honouring ``Retry-After``), 5xx, connection resets,
timeouts and truncated bodies. Writes are retried only when they carry a ``requestid`` (QBO then
replays the first answer instead of writing twice). Validation faults are never retried.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl, quote, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from qbo_pipeline import entities
from qbo_pipeline.config import Endpoints
from qbo_pipeline.entities import BATCH_MAX_ITEMS, MINOR_VERSION, Entity
from qbo_pipeline.qbo import query as qbo_query
from qbo_pipeline.qbo.auth import USER_AGENT
from qbo_pipeline.qbo.faults import (
    AuthenticationError,
    QBOError,
    ThrottledError,
    TransportError,
    fault_from_object,
    parse_fault,
)
from qbo_pipeline.qbo.limiter import BATCH_PER_MINUTE, RealmLimiter, limiter_for
from qbo_pipeline.qbo.provider import TokenProvider
from qbo_pipeline.qbo.redact import get_logger

_T = TypeVar("_T")

log = get_logger(__name__)

_GET_QUERY_LIMIT = 1500
"""Longer statements are POSTed as ``application/text`` instead of sent in the URL."""

PAGES_DIGESTED_AT_ONCE = 1
"""Query answers parsed and digested at once (:meth:`QBOClient.query` with ``digest``).

Ten pages can be in flight; parsed all at once, each a few times its JSON in Python objects,
they held up to ten parsed pages together while the GIL let one thread work at a time anyway.
The network stays ten wide: only the parsing and digesting take turns. One turn: at 1M
transactions the extraction's peak fell 253 -> 245 MiB from two turns, at the same speed."""

_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up.

    Attributes:
        max_attempts: Tries per call, the first included.
        base_delay: The backoff scale in seconds (doubling per attempt, full jitter).
        max_delay: The longest backoff between tries.
        max_retry_after: The longest ``Retry-After`` honoured (longer ones are capped).
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based): full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)


class QBOClient:
    """The QBO Accounting API of one company.

    Args:
        realm_id: The company id.
        endpoints: The environment's URLs (``api_base`` is used here).
        tokens: Supplies (and refreshes) the access token.
        limiter: The realm's limiter; by default the process-wide one for this host and realm.
        batch_limiter: The realm's batch budget (40 a minute); by default the process-wide one.
        retry: The retry policy.
        timeout: Seconds to wait for a response (QBO's own limit is 120 s).
        sleep: Injectable for tests.
        environment: Which QBO the company lives in (``embedded``, ``sandbox`` or
            ``production``), as it was connected; snapshots record it.
    """

    def __init__(
        self,
        realm_id: str,
        *,
        endpoints: Endpoints,
        tokens: TokenProvider,
        limiter: RealmLimiter | None = None,
        batch_limiter: RealmLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        environment: str | None = None,
    ) -> None:
        if not realm_id or not str(realm_id).replace("-", "").isalnum():
            raise ValueError(f"{realm_id!r} is not a QBO realm id")
        self.realm_id = str(realm_id)
        self.environment = environment
        self.endpoints = endpoints
        self.api_base = endpoints.api_base.rstrip("/")
        self.tokens = tokens
        self.limiter = limiter or limiter_for(self.api_base, self.realm_id)
        self.batch_limiter = batch_limiter or limiter_for(
            self.api_base, self.realm_id, kind="batch", per_minute=BATCH_PER_MINUTE
        )
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self._rng = random.Random()
        self._counter_lock = threading.Lock()
        self._digesting = threading.BoundedSemaphore(PAGES_DIGESTED_AT_ONCE)
        self._api_calls = 0
        self._calls_by_topic: Counter[str] = Counter()
        self.retries = 0
        self.last_server_time: datetime | None = None
        self.session = requests.Session()
        pool = max(4, self.limiter.max_in_flight + 2)
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self._company_url = f"{self.api_base}/v3/company/{self.realm_id}"

    def __repr__(self) -> str:
        return f"QBOClient(realm_id={self.realm_id!r}, api_base={self.api_base!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def __enter__(self) -> QBOClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_calls(self) -> int:
        """HTTP requests sent to the API so far (retries included)."""
        with self._counter_lock:
            return self._api_calls

    def calls_by_topic(self) -> dict[str, int]:
        """Requests sent so far, by topic: an entity name, ``batch``, ``cdc``, ``reports``...

        An entity's topic counts its queries, reads and writes (see :func:`call_topic`).
        """
        with self._counter_lock:
            return dict(self._calls_by_topic)

    # -- the generic call ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Call the API and return the parsed JSON body.

        Args:
            method: ``GET`` or ``POST``.
            path: Relative to ``/v3/company/{realm}/`` (``query``, ``invoice/12``), or an
                absolute ``/v3/...`` path on the API host.
            params: Query-string parameters (``minorversion`` is added).
            json: A JSON body.
            data: A raw body (set ``Content-Type`` in ``headers``).
            headers: Extra headers.
            request_id: QBO's ``requestid``: makes a write idempotent and so safe to retry.

        Raises:
            QBOError: The typed fault once retries are exhausted or not allowed.
        """
        idempotent = method.upper() == "GET" or request_id is not None
        return self._call(
            method,
            path,
            params=params,
            json=json,
            data=data,
            headers=headers,
            request_id=request_id,
            idempotent=idempotent,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        idempotent: bool,
        raw: bool = False,
        digest: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        method = method.upper()
        url = self._url(path)
        query: dict[str, Any] = dict(params or {})
        query["minorversion"] = MINOR_VERSION
        if request_id is not None:
            if not request_id or len(request_id) > 50:
                raise ValueError("a QBO requestid must be 1 to 50 characters")
            query["requestid"] = request_id
        body = orjson.dumps(json) if json is not None else data
        send_headers = dict(headers or {})
        if json is not None:
            send_headers["Content-Type"] = "application/json"
        label = f"{method} {urlsplit(url).path.removeprefix(self._company_url_path)}"
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = self.tokens.access_token()
            send_headers["Authorization"] = f"Bearer {token.reveal()}"
            try:
                status, resp_headers, content = self._send(
                    method, url, query, body, files, send_headers
                )
            except _TRANSIENT as exc:
                error: QBOError = TransportError(
                    f"{label}: {type(exc).__name__} talking to QBO", status=None
                )
                safe = idempotent or isinstance(exc, requests.ConnectTimeout)
                self._retry_or_raise(error, attempt, label, allowed=safe)
                continue
            if 200 <= status < 300:
                if raw:
                    return resp_headers, content
                with self._digesting if digest is not None else contextlib.nullcontext():
                    try:
                        doc = orjson.loads(content)
                        if not isinstance(doc, dict):
                            raise orjson.JSONDecodeError("not an object", "", 0)
                    except orjson.JSONDecodeError:
                        error = TransportError(
                            f"{label}: the response body is truncated or not JSON "
                            f"({len(content)} bytes)",
                            status=status,
                            intuit_tid=resp_headers.get("intuit_tid"),
                        )
                        self._retry_or_raise(error, attempt, label, allowed=idempotent)
                        continue
                    del content
                    self._note_time(doc)
                    fault = doc.get("Fault") or doc.get("fault")
                    if isinstance(fault, dict):
                        raise fault_from_object(
                            fault, status=status, intuit_tid=resp_headers.get("intuit_tid")
                        )
                    return doc if digest is None else digest(doc)
            error = parse_fault(status, resp_headers, content)
            if isinstance(error, AuthenticationError) and not refreshed:
                refreshed = True
                log.info("%s: access token refused (HTTP %s); refreshing once", label, status)
                self.tokens.refresh(rejected=token)
                attempt -= 1
                continue
            if isinstance(error, ThrottledError):
                wait = error.retry_after
                if wait is None:
                    wait = self.retry.backoff(attempt, self._rng)
                wait = min(wait, self.retry.max_retry_after)
                self.limiter.pause(wait)
                self._retry_or_raise(error, attempt, label, allowed=True, delay=wait)
                continue
            self._retry_or_raise(error, attempt, label, allowed=idempotent and error.retryable)

    @property
    def _company_url_path(self) -> str:
        return urlsplit(self._company_url).path

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, Any],
        body: bytes | str | None,
        files: Any,
        headers: dict[str, str],
    ) -> tuple[int, Mapping[str, str], bytes]:
        is_batch = urlsplit(url).path.endswith("/batch")
        with contextlib.ExitStack() as slots:
            if is_batch:
                slots.enter_context(self.batch_limiter.slot())
            slots.enter_context(self.limiter.slot())
            topic = call_topic(urlsplit(url).path, params)
            with self._counter_lock:
                self._api_calls += 1
                self._calls_by_topic[topic] += 1
            response = self.session.request(
                method,
                url,
                params=params,
                data=body,
                files=files,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
            try:
                content = response.content  # read inside the slot: the request is in flight
            finally:
                response.close()
        return response.status_code, response.headers, content

    def _retry_or_raise(
        self,
        error: QBOError,
        attempt: int,
        label: str,
        *,
        allowed: bool,
        delay: float | None = None,
    ) -> None:
        if not allowed or not error.retryable or attempt >= self.retry.max_attempts:
            if allowed and error.retryable:
                log.warning("%s: giving up after %d attempts: %s", label, attempt, error)
            raise error
        wait = self.retry.backoff(attempt, self._rng) if delay is None else delay
        self.retries += 1
        log.warning(
            "%s: %s; retry %d of %d in %.2fs",
            label,
            error,
            attempt,
            self.retry.max_attempts - 1,
            wait,
        )
        if wait > 0:
            self._sleep(wait)

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            base = urlsplit(self.api_base)
            if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
                raise ValueError(f"refusing to send the QBO token to another host: {path}")
            return path
        if path.startswith("/v3/"):
            return f"{self.api_base}{path}"
        return f"{self._company_url}/{path.lstrip('/')}"

    def _note_time(self, doc: Mapping[str, Any]) -> None:
        stamp = doc.get("time")
        when: datetime | None = None
        if isinstance(stamp, str):
            try:
                when = datetime.fromisoformat(stamp)
            except ValueError:
                when = None
        elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
            when = datetime.fromtimestamp(stamp / 1000, UTC)
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            self.last_server_time = when

    # -- queries -------------------------------------------------------------------------------

    @overload
    def query(self, statement: str) -> dict[str, Any]: ...

    @overload
    def query(self, statement: str, *, digest: Callable[[dict[str, Any]], _T]) -> _T: ...

    def query(
        self, statement: str, *, digest: Callable[[dict[str, Any]], Any] | None = None
    ) -> Any:
        """Run a query statement; returns the ``QueryResponse`` object.

        With ``digest``, returns ``digest(QueryResponse)`` instead, parsed and digested while
        holding one of the client's :data:`PAGES_DIGESTED_AT_ONCE` turns: a large page's
        parsed form then lives only while it is turned into something compact.
        """

        def response(doc: dict[str, Any]) -> Any:
            found = doc.get("QueryResponse")
            if not isinstance(found, dict):
                raise TransportError(f"the query answer has no QueryResponse: {statement[:80]}")
            return found if digest is None else digest(found)

        # Only a digesting caller takes a turn: counts and small reads need none.
        gated = response if digest is not None else None
        if len(statement) > _GET_QUERY_LIMIT:
            answer = self._call(
                "POST",
                "query",
                data=statement.encode("utf-8"),
                headers={"Content-Type": "application/text"},
                idempotent=True,
                digest=gated,
            )
        else:
            answer = self._call(
                "GET", "query", params={"query": statement}, idempotent=True, digest=gated
            )
        return answer if gated is not None else response(answer)

    def count(
        self,
        entity: Entity,
        where: Sequence[qbo_query.Condition] | str | None = None,
        *,
        include_inactive: bool = True,
    ) -> int:
        """QBO's ``COUNT(*)`` of an entity (inactive name-list records included by default)."""
        if include_inactive:
            where = qbo_query.with_inactive(entity, where)
        found = self.query(qbo_query.select(entity, where=where, count=True))
        total = found.get("totalCount", 0)
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise TransportError(f"COUNT(*) of {entity.name} answered {total!r}")
        return total

    @overload
    def iter_pages(
        self,
        entity: Entity,
        *,
        where: Sequence[qbo_query.Condition] | str | None = None,
        include_inactive: bool = True,
        page_size: int = entities.MAX_PAGE_SIZE,
        parallel: int = 4,
        convert: None = None,
    ) -> Iterator[list[dict[str, Any]]]: ...

    @overload
    def iter_pages(
        self,
        entity: Entity,
        *,
        where: Sequence[qbo_query.Condition] | str | None = None,
        include_inactive: bool = True,
        page_size: int = entities.MAX_PAGE_SIZE,
        parallel: int = 4,
        convert: Callable[[list[dict[str, Any]]], _T],
    ) -> Iterator[_T]: ...

    def iter_pages(
        self,
        entity: Entity,
        *,
        where: Sequence[qbo_query.Condition] | str | None = None,
        include_inactive: bool = True,
        page_size: int = entities.MAX_PAGE_SIZE,
        parallel: int = 4,
        convert: Callable[[list[dict[str, Any]]], Any] | None = None,
    ) -> Iterator[Any]:
        """Every record of an entity exactly once, page by page, checked against COUNT(*).

        ``convert`` turns each page into what is yielded instead, in the thread that fetched it
        (see :func:`qbo_pipeline.qbo.paging.iter_pages`).

        Raises:
            TruncationError: If the records fetched differ from COUNT(*).
        """
        from qbo_pipeline.qbo.paging import iter_pages

        return iter_pages(
            self,
            entity,
            where=where,
            include_inactive=include_inactive,
            page_size=page_size,
            parallel=parallel,
            convert=convert,
        )

    # -- records -------------------------------------------------------------------------------

    def read(self, entity: Entity, record_id: str) -> dict[str, Any]:
        """One record by id (singletons: the company's one record)."""
        if entity.name == "CompanyInfo":
            return self.company_info()
        if entity.name == "Preferences":
            return self.preferences()
        doc = self._call("GET", f"{entity.resource}/{_path_id(record_id)}", idempotent=True)
        return _unwrap(doc, entity)

    def create(
        self, entity: Entity, payload: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        """Create a record; returns it as QBO stored it (new Id, SyncToken "0")."""
        _writable(entity, "create")
        if entity.is_singleton:
            raise ValueError(f"{entity.name} cannot be created, only updated")
        doc = self.request("POST", entity.resource, json=dict(payload), request_id=request_id)
        return _unwrap(doc, entity)

    def update(
        self,
        entity: Entity,
        payload: Mapping[str, Any],
        *,
        sparse: bool = False,
        request_id: str,
    ) -> dict[str, Any]:
        """Update a record (full, or sparse: only the fields sent change)."""
        _writable(entity, "update")
        body = dict(payload)
        missing = [k for k in ("Id", "SyncToken") if body.get(k) in (None, "")]
        if missing:
            raise ValueError(f"an update of {entity.name} needs {' and '.join(missing)}")
        body["sparse"] = bool(sparse)
        doc = self.request("POST", entity.resource, json=body, request_id=request_id)
        return _unwrap(doc, entity)

    def delete(
        self, entity: Entity, record_id: str, sync_token: str, *, request_id: str
    ) -> dict[str, Any]:
        """Hard-delete a record (``{"status": "Deleted", "Id": ...}`` back)."""
        if not entity.deletable:
            raise ValueError(
                f"{entity.name} cannot be deleted through the API (removal: {entity.removal})"
            )
        doc = self.request(
            "POST",
            entity.resource,
            params={"operation": "delete"},
            json={"Id": str(record_id), "SyncToken": str(sync_token)},
            request_id=request_id,
        )
        return _unwrap(doc, entity)

    def void(
        self, entity: Entity, record_id: str, sync_token: str, *, request_id: str
    ) -> dict[str, Any]:
        """Void a transaction the way the catalogue says its entity is voided."""
        if entity.void_operation is None:
            raise ValueError(f"{entity.name} cannot be voided")
        params = dict(parse_qsl(entity.void_operation))
        body: dict[str, Any] = {"Id": str(record_id), "SyncToken": str(sync_token)}
        if params.get("include") == "void":
            body["sparse"] = True
        doc = self.request("POST", entity.resource, params=params, json=body, request_id=request_id)
        return _unwrap(doc, entity)

    def company_info(self) -> dict[str, Any]:
        """The CompanyInfo record."""
        doc = self._call("GET", f"companyinfo/{self.realm_id}", idempotent=True)
        return _unwrap(doc, entities.get("CompanyInfo"))

    def preferences(self) -> dict[str, Any]:
        """The Preferences record."""
        doc = self._call("GET", "preferences", idempotent=True)
        return _unwrap(doc, entities.get("Preferences"))

    # -- change data capture, batch, reports ---------------------------------------------------

    def cdc(self, entities_: Sequence[Entity], changed_since: datetime) -> dict[str, list[dict]]:
        """Changes since a time, per entity name (``{"status": "Deleted", ...}`` entries included).

        QBO returns at most :data:`~qbo_pipeline.entities.CDC_MAX_OBJECTS` objects per call; a
        caller that gets that many must split the entities or read in full.
        """
        if not entities_:
            return {}
        if changed_since.tzinfo is None:
            raise ValueError("changed_since must be timezone-aware")
        uncovered = [e.name for e in entities_ if not e.cdc]
        if uncovered:
            raise ValueError(f"CDC does not cover {', '.join(uncovered)}")
        params = {
            "entities": ",".join(e.name for e in entities_),
            "changedSince": changed_since.isoformat(timespec="seconds"),
        }
        doc = self._call("GET", "cdc", params=params, idempotent=True)
        result: dict[str, list[dict]] = {e.name: [] for e in entities_}
        for block in doc.get("CDCResponse") or []:
            for answer in block.get("QueryResponse") or []:
                for key, value in answer.items():
                    if not isinstance(value, list):
                        continue
                    try:
                        name = entities.get(key).name
                    except entities.UnknownEntityError:
                        log.warning("CDC answered an unknown entity key %r: ignored", key)
                        continue
                    result.setdefault(name, []).extend(value)
        return result

    def batch(
        self, items: Sequence[dict[str, Any]], *, request_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Send up to 30 operations at once; returns the ``BatchItemResponse`` items.

        A faulted item comes back as ``{"bId": ..., "Fault": {...}}`` (see
        :func:`~qbo_pipeline.qbo.faults.fault_from_object`); the call itself raises only when the
        whole batch fails. Batches of queries are retried freely; writes only with a request id.
        """
        if not items:
            return []
        if len(items) > BATCH_MAX_ITEMS:
            raise ValueError(f"a batch holds at most {BATCH_MAX_ITEMS} items, not {len(items)}")
        ids = [item.get("bId") for item in items]
        if any(not i for i in ids) or len(set(ids)) != len(ids):
            raise ValueError("every batch item needs a unique bId")
        read_only = all(set(item) <= {"bId", "Query"} for item in items)
        doc = self._call(
            "POST",
            "batch",
            json={"BatchItemRequest": list(items)},
            request_id=request_id,
            idempotent=read_only or request_id is not None,
        )
        answers = doc.get("BatchItemResponse")
        if not isinstance(answers, list):
            raise TransportError("the batch answer has no BatchItemResponse")
        return answers

    def create_tax_code(
        self, name: str, rates: Sequence[Mapping[str, Any]], *, request_id: str
    ) -> dict[str, Any]:
        """Create a tax code with its rates through QBO's TaxService (``taxservice/taxcode``).

        TaxCode and TaxRate are read-only entities; this is how QBO creates them (not through
        batch). Each rate is new (``TaxRateName``, ``RateValue`` in percent, ``TaxAgencyId``,
        ``TaxApplicableOn`` Sales or Purchase) or an existing one (``TaxRateId``).

        Returns:
            QBO's answer: ``TaxCode``, ``TaxCodeId`` and ``TaxRateDetails`` with each rate's
            ``TaxRateId``, in the order sent.

        Raises:
            ValueError: If the name or the rates are missing.
            QBOError: QBO's fault (6240 for a name in use).
        """
        if not str(name or "").strip():
            raise ValueError("a tax code needs a name")
        if not rates:
            raise ValueError(f"tax code {name!r} needs at least one rate")
        body = {"TaxCode": name, "TaxRateDetails": [dict(rate) for rate in rates]}
        doc = self.request("POST", entities.TAX_SERVICE, json=body, request_id=request_id)
        details = doc.get("TaxRateDetails")
        if not doc.get("TaxCodeId") or not isinstance(details, list) or len(details) != len(rates):
            raise TransportError("the TaxService answer has no TaxCodeId or not every TaxRateId")
        return doc

    def report(self, name: str, **params: str) -> dict[str, Any]:
        """A report (``TrialBalance``, ``ProfitAndLoss``, ...) as QBO's Header/Columns/Rows tree."""
        if not name.isalnum():
            raise ValueError(f"{name!r} is not a QBO report name")
        return self._call("GET", f"reports/{name}", params=params, idempotent=True)

    # -- attachments ---------------------------------------------------------------------------

    def download(self, attachable: Mapping[str, Any]) -> bytes:
        """The file of an Attachable.

        QBO's ``/download/{id}`` answers with a short-lived URL as text; that URL is fetched
        without the QBO token. A server that answers with the bytes themselves works too.
        """
        record_id = attachable.get("Id")
        if record_id:
            path = f"download/{_path_id(str(record_id))}"
        elif attachable.get("FileAccessUri"):
            path = str(attachable["FileAccessUri"])
        else:
            raise ValueError("the Attachable has neither an Id nor a FileAccessUri")
        headers, content = self._call(
            "GET", path, headers={"Accept": "*/*"}, idempotent=True, raw=True
        )
        kind = headers.get("Content-Type", "")
        text = content.strip()
        if kind.startswith("text/plain") and text.startswith((b"https://", b"http://")):
            return self._fetch_presigned(text.decode("ascii", "replace"))
        return content

    def _fetch_presigned(self, url: str) -> bytes:
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                response = requests.get(
                    url, timeout=self.timeout, headers={"User-Agent": USER_AGENT}
                )
            except _TRANSIENT as exc:
                error: QBOError = TransportError(f"attachment download: {type(exc).__name__}")
            else:
                if response.status_code == 200:
                    return response.content
                error = parse_fault(response.status_code, response.headers, response.content)
            self._retry_or_raise(error, attempt, "attachment download", allowed=True)
        raise AssertionError("unreachable")

    def upload(
        self,
        file_name: str,
        content_type: str,
        data: bytes,
        attach_to: list[dict[str, Any]] | None,
        *,
        request_id: str,
    ) -> dict[str, Any]:
        """Upload a file as an Attachable, optionally linked to records.

        Args:
            file_name: The file's name.
            content_type: Its MIME type.
            data: The bytes.
            attach_to: ``{"type": "Invoice", "value": "75"}`` references, or whole
                ``AttachableRef`` items (``{"EntityRef": {...}, "IncludeOnSend": false}``).
            request_id: Makes the upload idempotent.

        Returns:
            The created Attachable.
        """
        refs = [t if "EntityRef" in t else {"EntityRef": dict(t)} for t in attach_to or []]
        metadata: dict[str, Any] = {"FileName": file_name, "ContentType": content_type}
        if refs:
            metadata["AttachableRef"] = refs
        files = {
            "file_metadata_01": ("attachment.json", orjson.dumps(metadata), "application/json"),
            "file_content_01": (file_name, data, content_type),
        }
        doc = self._call("POST", "upload", files=files, request_id=request_id, idempotent=True)
        answers = doc.get("AttachableResponse") or []
        if not answers:
            raise TransportError("the upload answer has no AttachableResponse")
        first = answers[0]
        if "Fault" in first:
            raise fault_from_object(first["Fault"], status=200)
        return first["Attachable"]


def _unwrap(doc: Mapping[str, Any], entity: Entity) -> dict[str, Any]:
    found = doc.get(entity.json_key)
    if found is None:
        found = doc.get(entity.name)
    if not isinstance(found, dict):
        raise TransportError(f"the answer has no {entity.json_key} object")
    return found


def _writable(entity: Entity, what: str) -> None:
    if entity.read_only:
        raise ValueError(f"{entity.name} is read-only in the QBO API: it cannot be {what}d")


def _path_id(record_id: str) -> str:
    text = str(record_id)
    if not text or len(text) > 64:
        raise ValueError(f"{record_id!r} is not a QBO record id")
    return quote(text, safe="")


_FROM = re.compile(r"\bfrom\s+([A-Za-z]+)", re.IGNORECASE)


def call_topic(url_path: str, params: Mapping[str, Any]) -> str:
    """What a request is about, for counting API calls per entity.

    A query counts for the entity it reads (``FROM Invoice``), a read or write for the entity in
    its path; batch, CDC and report requests count under their own names.
    """
    tail = url_path.rstrip("/").split("/v3/company/", 1)[-1].split("/")[1:]
    head = tail[0].lower() if tail else ""
    if head == "query":
        found = _FROM.search(str(params.get("query", "")))
        head = found.group(1) if found else "query"
    elif head in ("batch", "cdc", "reports"):
        return head
    elif head in ("upload", "download"):
        return "Attachable"
    elif head == "taxservice":
        return "TaxCode"
    try:
        return entities.get(head).name
    except entities.UnknownEntityError:
        return "other"
