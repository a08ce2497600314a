"""Typed errors for everything that can go wrong talking to QBO, and the fault parser.

QBO answers errors in three shapes: the JSON ``{"Fault": {"Error": [...], "type": ...}}``, the
lower-case JSON of authentication failures (``{"fault": {"error": [...]}}``) and XML
(``<IntuitResponse><Fault><Error code=...>``), the last even when JSON was asked for (throttling,
system faults). :func:`parse_fault` turns any of them into one :class:`QBOError` subclass carrying
code, message, detail, element, HTTP status, fault type and the ``intuit_tid`` to quote to Intuit.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from qbo_pipeline.errors import EXIT_USAGE, QboPipelineError
from qbo_pipeline.qbo.redact import redact

RELOGIN_HINT = "run `qbo-backup auth login` to connect the company again"


class QBOError(QboPipelineError):
    """A failure reported by QBO (or on the way to it); exit code 1.

    Attributes:
        code: QBO's error code (``"5010"``), or ``None``.
        message: QBO's short message.
        detail: QBO's detail text, with anything token-shaped masked.
        element: The field QBO blames, if any.
        intuit_tid: The ``intuit_tid`` response header: quote it to Intuit support.
        status: The HTTP status, if a response came back.
        fault_type: ``ValidationFault``, ``SystemFault``, ``AUTHENTICATION`` and so on.
    """

    retryable = False
    """Whether the same request may succeed if sent again later."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: str | None = None,
        element: str | None = None,
        intuit_tid: str | None = None,
        status: int | None = None,
        fault_type: str | None = None,
    ) -> None:
        self.message = redact(message)
        self.code = code
        self.detail = redact(detail) if detail else detail
        self.element = element or None
        self.intuit_tid = intuit_tid
        self.status = status
        self.fault_type = fault_type
        super().__init__(self.message)

    def __str__(self) -> str:
        """One line naming everything known about the fault."""
        head = self.message
        tags = []
        if self.code:
            tags.append(f"code {self.code}")
        if self.status is not None:
            tags.append(f"HTTP {self.status}")
        if tags:
            head = f"{head} ({', '.join(tags)})"
        parts = [head]
        if self.detail and self.detail != self.message:
            parts.append(self.detail)
        if self.element:
            parts.append(f"element: {self.element}")
        if self.intuit_tid:
            parts.append(f"intuit_tid: {self.intuit_tid}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"message={self.message!r}, intuit_tid={self.intuit_tid!r})"
        )


class AuthenticationError(QBOError):
    """401 / 3200: the access token was refused."""


class ReauthorizationRequired(AuthenticationError):
    """The refresh token expired or was revoked: only a new login can fix it."""


class AuthorizationError(QBOError):
    """403: the app or user may not do this (subscription, permissions)."""


class ThrottledError(QBOError):
    """429 / 3001: the realm's rate limit was reached.

    Attributes:
        retry_after: Seconds QBO asked us to wait, if it said.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class StaleObjectError(QBOError):
    """5010: the SyncToken sent is not the record's current one."""


class DuplicateNameError(QBOError):
    """6240: another active record already has that name."""


class ObjectNotFoundError(QBOError):
    """610: the record, or one it references, is missing or inactive."""


class QueryError(QBOError):
    """4000 / 4001: the query could not be parsed or is invalid."""


class ValidationError(QBOError):
    """Any other 4xx validation fault (2020 required field, 2010 unsupported property, ...)."""


class ServerError(QBOError):
    """5xx or a SystemFault (10000): QBO failed; usually worth retrying."""

    retryable = True


class TransportError(QBOError):
    """The connection was reset, timed out, or the body was truncated or unreadable."""

    retryable = True


class TruncationError(QBOError):
    """The records fetched differ from what QBO's COUNT(*) (or the CDC cap) says exists.

    Attributes:
        entity: The entity name.
        expected: What QBO said exists.
        got: What was actually fetched.
    """

    def __init__(self, entity: str, expected: int, got: int, reason: str = "") -> None:
        text = f"{entity}: expected {expected} records (COUNT(*)), fetched {got}"
        if reason:
            text = f"{text}: {reason}"
        super().__init__(text)
        self.entity = entity
        self.expected = expected
        self.got = got
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.entity, self.expected, self.got, self.reason))


class NotConnectedError(QBOError):
    """No tokens are stored for the realm asked for (exit code 2: connect it first)."""

    exit_code = EXIT_USAGE


class TokenStoreError(QboPipelineError):
    """The encrypted token store cannot be used; the message names the file and the fix."""


class WrongPassphraseError(TokenStoreError):
    """The passphrase does not open the token store (exit code 2: a configuration error)."""

    exit_code = EXIT_USAGE


class CorruptTokenStoreError(TokenStoreError):
    """The token store file is damaged or not a token store."""


_CODE_CLASSES: dict[str, type[QBOError]] = {
    "3200": AuthenticationError,
    "3001": ThrottledError,
    "5010": StaleObjectError,
    "6240": DuplicateNameError,
    "610": ObjectNotFoundError,
    "4000": QueryError,
    "4001": QueryError,
    "10000": ServerError,
}

_XML_NS = re.compile(r"^\{[^}]*\}")
_ERROR_CODE = re.compile(r"errorCode=0*(\d+)")


def parse_fault(
    status: int, headers: Mapping[str, str] | None, body: bytes | str | None
) -> QBOError:
    """Turn an error response into the matching :class:`QBOError` subclass.

    Args:
        status: The HTTP status (200 when a fault came inside a successful response).
        headers: The response headers (for ``intuit_tid`` and ``Retry-After``).
        body: The raw body: JSON (either case) or XML, or anything unreadable.

    Returns:
        The typed error; never raises.
    """
    headers = headers or {}
    tid = _header(headers, "intuit_tid")
    raw = body.encode() if isinstance(body, str) else (body or b"")
    error = _parse_json(raw) or _parse_xml(raw) or {}
    code = error.get("code")
    message = error.get("message") or _default_message(status)
    if not code and (found := _ERROR_CODE.search(message)):
        code = found.group(1)
    if not error and raw.strip():
        detail: str | None = f"unreadable error body: {raw[:200].decode('utf-8', 'replace')!r}"
    else:
        detail = error.get("detail")
    kw: dict[str, Any] = {
        "code": code,
        "detail": detail,
        "element": error.get("element"),
        "intuit_tid": tid,
        "status": status,
        "fault_type": error.get("type"),
    }
    cls = _classify(status, code, error.get("type"))
    if cls is ThrottledError:
        return ThrottledError(message, retry_after=_retry_after(headers), **kw)
    return cls(message, **kw)


def fault_from_object(
    fault: Mapping[str, Any], *, status: int = 400, intuit_tid: str | None = None
) -> QBOError:
    """Turn a ``Fault`` object found inside a response (batch items, uploads) into an error."""
    body = orjson.dumps({"Fault": dict(fault)})
    headers = {"intuit_tid": intuit_tid} if intuit_tid else {}
    return parse_fault(status, headers, body)


def _classify(status: int, code: str | None, fault_type: str | None) -> type[QBOError]:
    if code in _CODE_CLASSES:
        return _CODE_CLASSES[code]
    kind = (fault_type or "").lower()
    if status == 401 or kind.startswith("authentication"):
        return AuthenticationError
    if status == 403 or kind.startswith("authorization"):
        return AuthorizationError
    if status == 429:
        return ThrottledError
    if status >= 500 or kind == "systemfault":
        return ServerError
    if status == 200 and not kind:
        return QBOError
    return ValidationError


def _default_message(status: int) -> str:
    if status >= 500:
        return f"QBO server error (HTTP {status})"
    if status == 429:
        return "QBO rate limit reached"
    if status == 401:
        return "QBO refused the access token"
    return f"QBO request failed (HTTP {status})"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                return val
    return value


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = _header(headers, "Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _parse_json(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    fault = doc.get("Fault") or doc.get("fault")
    if not isinstance(fault, dict):
        # An OAuth-style error ({"error": "invalid_grant", "error_description": ...}).
        if isinstance(doc.get("error"), str):
            return {
                "code": doc["error"],
                "message": doc.get("error_description") or doc["error"],
                "type": "OAuth",
            }
        return None
    errors = fault.get("Error") or fault.get("error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {}

    def pick(*keys: str) -> str | None:
        for key in keys:
            value = first.get(key)
            if value not in (None, ""):
                return str(value)
        return None

    return {
        "code": pick("code", "Code"),
        "message": pick("Message", "message"),
        "detail": pick("Detail", "detail"),
        "element": pick("element", "Element"),
        "type": fault.get("type") or fault.get("Type"),
    }


def _parse_xml(raw: bytes) -> dict[str, Any] | None:
    text = raw.lstrip()
    if not text.startswith(b"<"):
        return None
    try:
        root = ET.fromstring(text)  # expat fetches no external entities
    except ET.ParseError:
        return None
    fault = None
    for node in root.iter():
        if _XML_NS.sub("", node.tag) == "Fault":
            fault = node
            break
    if fault is None:
        return None
    error = next((n for n in fault if _XML_NS.sub("", n.tag) == "Error"), None)
    out: dict[str, Any] = {"type": fault.get("type")}
    if error is not None:
        out["code"] = error.get("code")
        out["element"] = error.get("element")
        for child in error:
            name = _XML_NS.sub("", child.tag).lower()
            if name in ("message", "detail"):
                out[name] = (child.text or "").strip() or None
    return out
