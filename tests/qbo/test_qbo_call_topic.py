"""What each API request is counted under."""

import pytest

from qbo_pipeline.qbo.http import call_topic

BASE = "/v3/company/9341450000000001"


@pytest.mark.parametrize(
    ("path", "params", "topic"),
    [
        (f"{BASE}/query", {"query": "SELECT * FROM Invoice STARTPOSITION 1"}, "Invoice"),
        (f"{BASE}/query", {"query": "select count(*) from creditcardpayment"}, "CreditCardPayment"),
        (f"{BASE}/invoice/130", {}, "Invoice"),
        (f"{BASE}/customer", {"requestid": "x"}, "Customer"),
        (f"{BASE}/companyinfo/9341450000000001", {}, "CompanyInfo"),
        (f"{BASE}/batch", {}, "batch"),
        (f"{BASE}/cdc", {"entities": "Invoice"}, "cdc"),
        (f"{BASE}/reports/TrialBalance", {}, "reports"),
        (f"{BASE}/download/77", {}, "Attachable"),
        (f"{BASE}/taxservice/taxcode", {"requestid": "x"}, "TaxCode"),
        (f"{BASE}/no-such-thing", {}, "other"),
    ],
)
def test_call_topic(path: str, params: dict[str, str], topic: str) -> None:
    assert call_topic(path, params) == topic
