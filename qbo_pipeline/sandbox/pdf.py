"""Sales and purchase forms as PDF, as QBO's ``GET .../<entity>/<id>/pdf`` answers them.

A tiny PDF 1.4 writer of our own: one Courier font, text only, uncompressed content streams, a
correct cross-reference table. The layout is plain (company, title, number, date, party, lines,
total); what matters to a client is a well-formed ``application/pdf`` that names the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qbo_pipeline import entities

PDF_TYPE = "application/pdf"

TITLES = {
    "Invoice": "INVOICE",
    "Estimate": "ESTIMATE",
    "SalesReceipt": "SALES RECEIPT",
    "CreditMemo": "CREDIT MEMO",
    "RefundReceipt": "REFUND RECEIPT",
    "PurchaseOrder": "PURCHASE ORDER",
}
"""The heading printed on each form (one per entity whose catalogue entry is ``printable``)."""

_PAGE_WIDTH = 612
_PAGE_HEIGHT = 792
_MARGIN = 56
_LINE_HEIGHT = 14
_LINES_PER_PAGE = (_PAGE_HEIGHT - 2 * _MARGIN) // _LINE_HEIGHT


def render_form(entity: str, record: Mapping[str, Any], company_name: str) -> bytes:
    """The PDF of one sales or purchase form.

    Args:
        entity: The name of a ``printable`` catalogue entity (``Invoice``, ``Estimate``...).
        record: The record as the API answers it.
        company_name: The company's name, printed at the top.

    Raises:
        ValueError: If the entity has no printed form.
    """
    if not is_printable(entity):
        forms = ", ".join(e.name for e in entities.CATALOGUE if e.printable)
        raise ValueError(f"{entity} has no printed form; forms exist for {forms}")
    number = str(record.get("DocNumber") or record.get("Id") or "")
    title = f"{TITLES[entity]} {number}".strip()
    return write_pdf(_form_lines(entity, record, company_name, number), title=title)


def is_printable(entity: str) -> bool:
    """Whether QBO prints ``entity`` as a form (the catalogue's ``printable``)."""
    try:
        return entities.get(entity).printable
    except entities.UnknownEntityError:
        return False


def _form_lines(
    entity: str, record: Mapping[str, Any], company_name: str, number: str
) -> list[str]:
    party_ref = record.get("VendorRef") if entity == "PurchaseOrder" else record.get("CustomerRef")
    party_label = "Vendor" if entity == "PurchaseOrder" else "Customer"
    lines = [
        company_name,
        "",
        TITLES[entity],
        f"No. {number}",
        f"Date: {record.get('TxnDate', '')}",
    ]
    if record.get("DueDate"):
        lines.append(f"Due: {record['DueDate']}")
    if isinstance(party_ref, Mapping):
        lines.append(f"{party_label}: {party_ref.get('name') or party_ref.get('value', '')}")
    lines += ["", f"{'Description':<44}{'Qty':>8}{'Rate':>12}{'Amount':>14}"]
    for line in record.get("Line") or []:
        if not isinstance(line, Mapping) or line.get("DetailType") == "SubTotalLineDetail":
            continue
        detail = line.get(str(line.get("DetailType", ""))) or {}
        item = detail.get("ItemRef") if isinstance(detail, Mapping) else None
        text = line.get("Description") or (item.get("name") if isinstance(item, Mapping) else "")
        qty = detail.get("Qty", "") if isinstance(detail, Mapping) else ""
        rate = detail.get("UnitPrice", "") if isinstance(detail, Mapping) else ""
        amount = _money(line.get("Amount"))
        lines.append(f"{str(text or '')[:43]:<44}{_num(qty):>8}{_num(rate):>12}{amount:>14}")
    currency = (record.get("CurrencyRef") or {}).get("value", "")
    lines += ["", f"Total: {_money(record.get('TotalAmt'))} {currency}".rstrip()]
    if entity == "Invoice" and "Balance" in record:
        lines.append(f"Balance due: {_money(record.get('Balance'))}")
    if record.get("CustomerMemo"):
        lines += ["", str((record.get("CustomerMemo") or {}).get("value", ""))]
    return lines


def _money(value: Any) -> str:
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return ""


def _num(value: Any) -> str:
    if value in ("", None):
        return ""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def write_pdf(lines: Iterable[str], *, title: str = "") -> bytes:
    """A PDF 1.4 file printing ``lines`` in Courier, as many pages as they need."""
    text = list(lines) or [""]
    pages = [text[i : i + _LINES_PER_PAGE] for i in range(0, len(text), _LINES_PER_PAGE)]
    # Objects: 1 catalog, 2 page tree, 3 font, 4 info, then a page and its content per page.
    first_page = 5
    page_ids = [first_page + 2 * i for i in range(len(pages))]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(f"{p} 0 R".encode() for p in page_ids)
        + f"] /Count {len(pages)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
        4: b"<< /Title " + _string(title) + b" /Producer (qbo_pipeline sandbox) >>",
    }
    for page_id, page_lines in zip(page_ids, pages, strict=True):
        stream = _content(page_lines)
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_WIDTH} {_PAGE_HEIGHT}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>"
        ).encode()
        objects[page_id + 1] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n".encode() + b"0000000000 65535 f \n"
    for number in range(1, size):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R /Info 4 0 R >>\n".encode()
    out += f"startxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def _content(lines: list[str]) -> bytes:
    top = _PAGE_HEIGHT - _MARGIN
    parts = [b"BT", f"/F1 10 Tf {_LINE_HEIGHT} TL {_MARGIN} {top} Td".encode()]
    parts.extend(_string(line) + b" Tj T*" for line in lines)
    parts.append(b"ET")
    return b"\n".join(parts)


def _string(text: str) -> bytes:
    """A PDF literal string: WinAnsi bytes, with backslash and parentheses escaped."""
    raw = " ".join(text.splitlines()).encode("cp1252", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"
