"""QBO's XML wire format: XML answers (``Accept: application/xml``, QBO's default) and bodies.

XML request bodies (``Content-Type: application/xml``) are read for creates and updates.

QBO's JSON is a mechanical image of its XML schema, which this module inverts:

- lower-case keys with scalar values are XML attributes (``domain``, ``sparse``,
  ``startPosition``/``maxResults``/``totalCount``, a fault's ``type``, an error's ``code`` and
  ``element``, a reference's ``name`` and ``type``, a batch item's ``bId``, a report row's
  ``type``), except ``value``, which is the element's text (``<CustomerRef name="Amy">1</...>``);
  a report's ``ColData`` keeps ``value`` as an attribute, as QBO's XML does;
- every other key is an element; a list is the element repeated;
- the envelope is ``<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="...">``
  (a report is ``<Report>`` itself, as in JSON it has no envelope).

Negotiation: JSON only when the ``Accept`` header prefers ``application/json``; no header, ``*/*``
or an XML type get XML (QBO's default: clients must ask for JSON, which is why Intuit's guides and
every client library send ``Accept: application/json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

XMLNS = "http://schema.intuit.com/finance/v3"
XML_TYPE = "application/xml;charset=UTF-8"

_XML_MEDIA = ("application/xml", "text/xml")
_JSON_MEDIA = ("application/json",)
_ATTRIBUTE_VALUE_PARENTS = frozenset({"ColData"})

_VALUE_OBJECTS = frozenset({"CustomerMemo"})
"""Elements whose text is a ``{"value": ...}`` object in JSON (as every ``...Ref`` is)."""

_LIST_ELEMENTS = frozenset(
    {
        "Line",
        "LinkedTxn",
        "CustomField",
        "TaxLine",
        "NameValue",
        "AttachableRef",
        "ColData",
        "Row",
        "Column",
        "Option",
        "BatchItemRequest",
        "DeliveryAddress",
    }
)
"""Elements that are lists in QBO's JSON even when the XML holds one of them."""

_NUMBER_SUFFIXES = (
    "Amt",
    "Amount",
    "Qty",
    "UnitPrice",
    "Balance",
    "Rate",
    "Percent",
    "Cost",
    "Price",
    "Hours",
    "Minutes",
    "Days",
    "LineNum",
)


def wants_xml(accept: str | None) -> bool:
    """Whether an ``Accept`` header gets XML: unless it prefers JSON over XML, it does."""
    if not accept or not accept.strip():
        return True
    json_q, json_specific = _quality(accept, _JSON_MEDIA)
    xml_q, xml_specific = _quality(accept, _XML_MEDIA)
    # Equal q: the type named more specifically wins (``application/json, */*`` is JSON).
    return not (json_q, json_specific) > (xml_q, xml_specific) or json_q <= 0


def _quality(accept: str, media: tuple[str, ...]) -> tuple[float, int]:
    """The q and specificity of the most specific range of ``accept`` matching ``media``."""
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        kind = kind.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        for wanted in media:
            major = wanted.split("/")[0]
            specificity = (
                2 if kind == wanted else 1 if kind == f"{major}/*" else 0 if kind == "*/*" else -1
            )
            if specificity > best[0]:
                best = (specificity, q)
    return best[1], best[0]


# --- JSON to XML ---------------------------------------------------------------------------


def to_xml(body: Mapping[str, Any]) -> bytes:
    """An API answer (the JSON body, decoded) as QBO's XML document."""
    if "fault" in body and isinstance(body.get("fault"), Mapping):
        body = _upper_fault(body)
    if "Header" in body and "Rows" in body:
        root, attributes, children = "Report", {}, dict(body)
    else:
        root = "IntuitResponse"
        attributes = {"time": body["time"]} if isinstance(body.get("time"), str) else {}
        children = {k: v for k, v in body.items() if k != "time"}
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n']
    _element(out, root, children, extra={"xmlns": XMLNS, **attributes})
    return "".join(out).encode()


def _upper_fault(body: Mapping[str, Any]) -> dict[str, Any]:
    """The lower-case 401 body as the XML fault QBO sends for it."""
    fault = body["fault"]
    errors = [
        {
            "Message": e.get("message"),
            "Detail": e.get("detail"),
            "code": e.get("code"),
        }
        for e in fault.get("error") or []
    ]
    return {"Fault": {"Error": errors, "type": fault.get("type")}}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return format(value, "f") if "e" in text else text
    return str(value)


def _is_attribute(key: str, value: Any, parent: str) -> bool:
    if isinstance(value, Mapping | list) or not key[:1].islower():
        return False
    return key != "value" or parent in _ATTRIBUTE_VALUE_PARENTS


def _element(out: list[str], tag: str, value: Any, extra: Mapping[str, Any] | None = None) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _element(out, tag, item)
        return
    if not isinstance(value, Mapping):
        out.append(f"<{tag}>{escape(_text(value))}</{tag}>")
        return
    attributes = dict(extra or {})
    children: list[tuple[str, Any]] = []
    text: str | None = None
    for key, item in value.items():
        if item is None:
            continue
        if _is_attribute(key, item, tag):
            attributes[key] = item
        elif key == "value" and not isinstance(item, Mapping | list):
            text = _text(item)
        else:
            children.append((key, item))
    head = tag + "".join(f" {k}={quoteattr(_text(v))}" for k, v in attributes.items())
    if text is None and not children:
        out.append(f"<{head}/>")
        return
    out.append(f"<{head}>")
    if text is not None:
        out.append(escape(text))
    for key, item in children:
        _element(out, key, item)
    out.append(f"</{tag}>")


# --- XML to JSON ---------------------------------------------------------------------------


class XMLBodyError(ValueError):
    """An XML request body that cannot be read; the message says why."""


def from_xml(data: bytes) -> dict[str, Any]:
    """An XML request body (``<Customer>...</Customer>``) as the JSON object QBO would take.

    Attributes become lower-case keys (a reference's text its ``value``), repeated or known list
    elements lists, ``true``/``false`` booleans, and amounts, quantities and rates numbers; ids and
    every other text stay strings.

    Raises:
        XMLBodyError: If the body is not well-formed XML.
    """
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XMLBodyError("XML bodies with a DOCTYPE or entities are not accepted")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise XMLBodyError(f"the request body is not well-formed XML: {exc}") from None
    return _from_element(root)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _from_element(node: ElementTree.Element) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, raw in node.attrib.items():
        name = _local(key)
        if name == "domain":
            continue
        result[name] = _scalar(name, raw)
    children = list(node)
    for child in children:
        tag = _local(child.tag)
        value: Any = (
            _from_element(child)
            if len(child) or child.attrib or tag.endswith("Ref") or tag in _VALUE_OBJECTS
            else _scalar(tag, (child.text or "").strip())
        )
        if tag in result:
            if not isinstance(result[tag], list):
                result[tag] = [result[tag]]
            result[tag].append(value)
        elif tag in _LIST_ELEMENTS:
            result[tag] = [value]
        else:
            result[tag] = value
    if not children and node.text and node.text.strip() and "value" not in result:
        result["value"] = node.text.strip()
    return result


def _scalar(name: str, text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if name.endswith(_NUMBER_SUFFIXES):
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text else number
    return text
