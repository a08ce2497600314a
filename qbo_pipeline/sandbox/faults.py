"""QBO faults and their wire bodies, exactly as the recorded captures show them.

Most faults are JSON (``{"Fault": {"Error": [...], "type": ...}, "time": ...}``); the 401 of an
expired or missing token is a lower-case JSON body; throttling (429) and some system faults are XML
whatever the ``Accept`` header asked for.

Where no capture shows a fault, its code follows Intuit's published material (each function
below names its source):

- a batch over 30 items: 1040 "Batch size exceeds allowed limit" (Intuit's general error-code
  list, 600-1999 "General Error Codes", as mirrored in integrators' help pages);
- a CDC ``changedSince`` beyond the 30-day look-back: 500 "Unsupported Operation" with QBO's
  detail "Operation cdc with changedSince date ... which is older than fixed days is not
  supported." (quoted verbatim in Wish-Org/QuickBooksSharp issue #19);
- CDC of an entity CDC does not cover: the same 500 "Unsupported Operation" family (no capture;
  QBO answers unsupported operations with code 500, ``error_unsupported_operation_500.json``);
- a realm the token was not issued for, or that does not exist: HTTP 403, code 3100,
  ``message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403`` (the message format
  of the captured 3200 and 3001 faults; 403 is Intuit's "restricted" status in its HTTP-status
  table of the error-codes page).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import orjson

from qbo_pipeline.sandbox.clock import qbo_time


class SandboxFault(Exception):
    """A QBO fault the API answers with.

    Attributes:
        status: The HTTP status.
        code: The QBO error code (``"5010"``).
        message: The ``Message`` text.
        detail: The ``Detail`` text.
        element: The ``element`` field, or None to leave it out.
        fault_type: ``ValidationFault``, ``SystemFault``, ``AuthenticationFault`` ...
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: str,
        element: str | None = None,
        fault_type: str = "ValidationFault",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element
        self.fault_type = fault_type

    def fault_object(self) -> dict[str, Any]:
        """The ``Fault`` object (without the envelope), as batch items carry it."""
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element is not None:
            error["element"] = self.element
        return {"Error": [error], "type": self.fault_type}

    def body(self, when: datetime) -> bytes:
        """The JSON response body."""
        return orjson.dumps({"Fault": self.fault_object(), "time": qbo_time(when, millis=True)})


# --- the faults the business rules raise ----------------------------------------------------

_INACTIVE_DETAIL = (
    "Object Not Found : Something you're trying to use has been made inactive. "
    "Check the fields with accounts, customers, items, vendors or employees."
)


def not_found(detail: str = _INACTIVE_DETAIL) -> SandboxFault:
    """610: the object does not exist or was made inactive."""
    return SandboxFault(400, "610", "Object Not Found", detail, element="")


def stale_object() -> SandboxFault:
    """5010: the SyncToken sent is not the current one."""
    return SandboxFault(
        400,
        "5010",
        "Stale Object Error",
        "Stale Object Error : You and the sandbox were working on this at the same time. "
        "The sandbox finished before you did, so your work was not saved.",
        element="",
    )


def duplicate_name(name: str) -> SandboxFault:
    """6240: an active record of the list already has this name."""
    return SandboxFault(
        400,
        "6240",
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : {name}",
    )


def required_missing(field: str) -> SandboxFault:
    """2020: a required field is missing."""
    return SandboxFault(
        400,
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {field} is missing in the request",
        element=field,
    )


def invalid_id(value: object) -> SandboxFault:
    """2030: an id that is not a number."""
    return SandboxFault(
        400,
        "2030",
        "Invalid ID",
        f"Id should be a valid number. Supplied value:{value}",
        element="Id",
    )


def unsupported_property(detail: str) -> SandboxFault:
    """2010: the request carries a property that cannot be used."""
    return SandboxFault(400, "2010", "Request has invalid or unsupported property", detail)


def unsupported_operation(detail: str) -> SandboxFault:
    """500 (code) / HTTP 400: the operation is not supported on this resource."""
    return SandboxFault(400, "500", "Unsupported Operation", detail)


def batch_too_large(items: int, limit: int) -> SandboxFault:
    """1040: a batch request with more items than allowed (Intuit's general error codes)."""
    return SandboxFault(
        400,
        "1040",
        "Batch size exceeds allowed limit",
        f"The batch has {items} items; at most {limit} BatchItemRequest items are allowed.",
    )


def cdc_too_old(changed_since: str, days: int) -> SandboxFault:
    """500 Unsupported Operation: ``changedSince`` older than CDC's look-back (QBO's wording)."""
    return unsupported_operation(
        f"Operation cdc with changedSince date {changed_since} which is older than fixed days "
        f"is not supported. (CDC looks back at most {days} days.)"
    )


def cdc_uncovered(names: list[str]) -> SandboxFault:
    """500 Unsupported Operation: CDC of entities it does not cover."""
    return unsupported_operation(
        f"Operation cdc is not supported for {', '.join(names)}; read them with a query instead."
    )


def application_authorization_failed(realm_id: str) -> SandboxFault:
    """403 / 3100: the token may not use this company (another realm's, or no such realm)."""
    return SandboxFault(
        403,
        "3100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        f"The application is not authorized to access company {realm_id}.",
        fault_type="AuthorizationFault",
    )


def business_validation(detail: str) -> SandboxFault:
    """6000: a business rule refuses the write."""
    return SandboxFault(
        400,
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
        element="",
    )


def query_parse_error(detail: str) -> SandboxFault:
    """4000: the query text cannot be parsed."""
    return SandboxFault(400, "4000", "Error parsing query", f"QueryParserError: {detail}")


def invalid_query(detail: str) -> SandboxFault:
    """4001: the query parses but asks for something invalid."""
    return SandboxFault(400, "4001", "Invalid query", f"QueryValidationError: {detail}")


def request_error(detail: str) -> SandboxFault:
    """A malformed request body or parameter (2010-style validation fault)."""
    return SandboxFault(400, "2010", "Request has invalid or unsupported property", detail)


# --- bodies that are not the usual JSON fault ------------------------------------------------


def authentication_body(when: datetime, detail: str = "Token expired") -> bytes:
    """The lower-case 401 body of a missing, expired or revoked access token."""
    return orjson.dumps(
        {
            "warnings": None,
            "intuitObject": None,
            "fault": {
                "error": [
                    {
                        "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                        "detail": detail,
                        "code": "3200",
                        "element": None,
                    }
                ],
                "type": "AUTHENTICATION",
            },
            "report": None,
            "queryResponse": None,
            "batchItemResponse": [],
            "attachableResponse": [],
            "syncErrorResponse": None,
            "requestId": None,
            "time": int(when.timestamp() * 1000),
            "status": None,
            "cdcresponse": [],
        }
    )


def throttle_xml(when: datetime) -> bytes:
    """The XML body of a 429 (code 3001), sent even when JSON was asked for."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse time="{qbo_time(when, millis=True)}" '
        'xmlns="http://schema.intuit.com/finance/v3">\n'
        '  <Fault type="SERVICE">\n'
        '    <Error code="3001">\n'
        "      <Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>\n"
        "      <Detail>The request limit was reached.  Try again later</Detail>\n"
        "    </Error>\n"
        "  </Fault>\n"
        "</IntuitResponse>\n"
    ).encode()


def system_fault_xml(when: datetime, detail: str = "") -> bytes:
    """The XML SystemFault (code 10000) of a 500 or 503."""
    detail = detail or "System Failure Error: An unexpected error occurred"
    return (
        '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" '
        f'time="{qbo_time(when, millis=True)}">\n'
        '\t<Fault type="SystemFault">\n'
        '\t\t<Error code="10000">\n'
        "\t\t\t<Message>An application error has occurred while processing your request"
        "</Message>\n"
        f"\t\t\t<Detail>{escape(detail)}</Detail>\n"
        "\t\t</Error>\n"
        "\t</Fault>\n"
        "</IntuitResponse>\n"
    ).encode()


def system_fault(detail: str = "") -> SandboxFault:
    """The JSON SystemFault (code 10000)."""
    return SandboxFault(
        500,
        "10000",
        "An application error has occurred while processing your request",
        detail or "System Failure Error: An unexpected error occurred",
        fault_type="SystemFault",
    )
