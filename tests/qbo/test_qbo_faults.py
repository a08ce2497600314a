from __future__ import annotations

import orjson
import pytest

from qbo_pipeline.qbo import faults
from qbo_pipeline.qbo.faults import parse_fault
from tests.conftest import SAMPLES

# (file, HTTP status it came with, class, code)
ERROR_SAMPLES = [
    ("error_401_authentication_3200.json", 401, faults.AuthenticationError, "3200"),
    ("error_429_throttle_3001.xml", 429, faults.ThrottledError, "3001"),
    ("error_duplicate_name_6240.json", 400, faults.DuplicateNameError, "6240"),
    ("error_invalid_query_4001.json", 400, faults.QueryError, "4001"),
    ("error_object_not_found_610.json", 400, faults.ObjectNotFoundError, "610"),
    ("error_required_param_2020.json", 400, faults.ValidationError, "2020"),
    ("error_stale_object_5010.json", 400, faults.StaleObjectError, "5010"),
    ("extra/error_invalid_id_2030.json", 400, faults.ValidationError, "2030"),
    ("extra/error_query_parser_4000.json", 400, faults.QueryError, "4000"),
    ("extra/error_systemfault_10000.xml", 500, faults.ServerError, "10000"),
    ("extra/error_unsupported_operation_500.json", 400, faults.ValidationError, "500"),
    ("extra/error_unsupported_property_2010.json", 400, faults.ValidationError, "2010"),
]


def test_every_error_sample_is_covered() -> None:
    on_disk = {str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("error_*")}
    assert on_disk == {name for name, *_ in ERROR_SAMPLES}


@pytest.mark.parametrize(("name", "status", "cls", "code"), ERROR_SAMPLES)
def test_parse_fault_samples(name: str, status: int, cls: type, code: str) -> None:
    body = (SAMPLES / name).read_bytes()
    err = parse_fault(status, {"intuit_tid": "tid-123"}, body)
    assert type(err) is cls
    assert err.code == code
    assert err.status == status
    assert err.intuit_tid == "tid-123"
    assert err.message
    assert "tid-123" in str(err)
    assert code in str(err)


def test_json_fault_fields() -> None:
    err = parse_fault(400, {}, (SAMPLES / "error_required_param_2020.json").read_bytes())
    assert err.message.startswith("Required param missing")
    assert err.detail == "Required parameter Name is missing in the request"
    assert err.element == "Name"
    assert err.fault_type == "ValidationFault"
    assert not err.retryable


def test_lowercase_401_body_masks_the_token_in_the_detail() -> None:
    err = parse_fault(401, {}, (SAMPLES / "error_401_authentication_3200.json").read_bytes())
    assert err.fault_type == "AUTHENTICATION"
    assert "AB01601390262kxzxOlnHYdhtEVRXISU7piPqQrCmmbDN35Yjd" not in str(err)
    assert "AB01601390262" not in repr(err)
    assert "Token expired: ********" in err.detail


def test_xml_throttle_with_retry_after() -> None:
    body = (SAMPLES / "error_429_throttle_3001.xml").read_bytes()
    err = parse_fault(429, {"Retry-After": "7"}, body)
    assert isinstance(err, faults.ThrottledError)
    assert err.retry_after == 7.0
    assert err.retryable
    assert err.detail == "The request limit was reached.  Try again later"
    assert err.fault_type == "SERVICE"


def test_retry_after_http_date_and_garbage() -> None:
    err = parse_fault(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"")
    assert err.retry_after == 0.0
    err = parse_fault(429, {"Retry-After": "soon"}, b"")
    assert err.retry_after is None


def test_system_fault_is_retryable() -> None:
    body = (SAMPLES / "extra/error_systemfault_10000.xml").read_bytes()
    err = parse_fault(503, {}, body)
    assert isinstance(err, faults.ServerError)
    assert err.retryable
    assert err.fault_type == "SystemFault"


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (502, b"<html>bad gateway</html>", faults.ServerError),
        (500, b"", faults.ServerError),
        (400, b"not json", faults.ValidationError),
        (401, b"", faults.AuthenticationError),
        (403, b"{}", faults.AuthorizationError),
        (429, b"", faults.ThrottledError),
    ],
)
def test_unreadable_bodies_still_classify(status: int, body: bytes, cls: type) -> None:
    err = parse_fault(status, None, body)
    assert type(err) is cls
    assert err.status == status
    if body.strip() and body != b"{}":
        assert "unreadable error body" in (err.detail or "")


def test_truncated_json_body() -> None:
    body = (SAMPLES / "error_stale_object_5010.json").read_bytes()[:40]
    err = parse_fault(400, {}, body)
    assert isinstance(err, faults.ValidationError)
    assert err.code is None


def test_oauth_error_body() -> None:
    body = orjson.dumps({"error": "invalid_grant", "error_description": "Token invalid"})
    err = parse_fault(400, {}, body)
    assert err.code == "invalid_grant"
    assert err.message == "Token invalid"


def test_fault_inside_a_batch_item() -> None:
    doc = orjson.loads((SAMPLES / "batch_response_mixed.json").read_bytes())
    items = {item["bId"]: item for item in doc["BatchItemResponse"]}
    err = faults.fault_from_object(items["bid3"]["Fault"], intuit_tid="t1")
    assert isinstance(err, faults.StaleObjectError)
    assert err.intuit_tid == "t1"
    err = faults.fault_from_object(items["bid2"]["Fault"])
    assert isinstance(err, faults.ObjectNotFoundError)


def test_fault_inside_an_upload_response() -> None:
    doc = orjson.loads((SAMPLES / "extra/attachable_upload_error_6000.json").read_bytes())
    err = faults.fault_from_object(doc["AttachableResponse"][0]["Fault"], status=200)
    assert isinstance(err, faults.ValidationError)
    assert err.code == "6000"
    assert "Estimate 75" in err.detail


def test_truncation_error_names_entity_and_counts() -> None:
    err = faults.TruncationError("Invoice", 1200, 1199)
    assert "Invoice" in str(err)
    assert "1200" in str(err)
    assert "1199" in str(err)
    assert (err.entity, err.expected, err.got) == ("Invoice", 1200, 1199)


@pytest.mark.parametrize(
    "err",
    [
        faults.TruncationError("Invoice", 3, 2, "why"),
        faults.ThrottledError("slow down", retry_after=3.0, code="3001", intuit_tid="t"),
        faults.StaleObjectError("stale", code="5010", status=400, intuit_tid="t"),
        faults.ReauthorizationRequired("log in again", code="invalid_grant"),
    ],
)
def test_errors_survive_pickling(err: faults.QBOError) -> None:
    import pickle

    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.code == err.code
    assert back.intuit_tid == err.intuit_tid
