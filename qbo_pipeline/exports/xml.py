"""XML files with QBO's element names, shaped like QBO's own XML responses.

Each file is ``<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="...">`` holding
one ``<QueryResponse startPosition maxResults totalCount>`` with one element per record, named
by the entity's JSON key (``<Invoice domain="QBO" sparse="false">``). Mapping of the JSON:

* an object becomes an element with one child per key, in the payload's (sorted) key order;
* a reference (an object with ``value`` and at most ``name`` and ``type``) becomes
  ``<CustomerRef name="Amy's Bird Sanctuary">1</CustomerRef>``, as QBO writes it;
* an array becomes repeated elements of its key's name (an empty array writes nothing);
* ``true``/``false`` and numbers as JSON writes them, ``null`` as ``xsi:nil="true"``;
* the record's ``domain`` and ``sparse`` become attributes of the record element;
* a key that is not a valid XML name becomes ``<Field name="the key">`` (its value written in
  full, a reference as child elements).

Text is escaped (``& < >``; in attributes also ``"``, tab, CR and LF as character references;
CR in text as ``&#13;`` so parsers keep it). Characters that XML 1.0 forbids even as
references (C0 controls other than tab, CR, LF; U+FFFE, U+FFFF; lone surrogates) are STRIPPED:
XML cannot carry them; the JSON and CSV exports keep them. Each file's manifest entry counts
them under ``notes.stripped_characters``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from qbo_pipeline.exports.files import AtomicFile, ExportedFile
from qbo_pipeline.exports.flatten import format_number
from qbo_pipeline.exports.naming import file_name

NAMESPACE = "http://schema.intuit.com/finance/v3"
"""QBO's v3 XML namespace."""

XSI = "http://www.w3.org/2001/XMLSchema-instance"

RECORD_ATTRIBUTES = ("domain", "sparse")
"""Top-level payload keys QBO writes as attributes of the record element."""

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


class _Escaper:
    """Escapes text for XML 1.0 and counts the characters it had to strip."""

    def __init__(self) -> None:
        self.stripped = 0

    def _clean(self, text: str) -> str:
        cleaned, n = _FORBIDDEN.subn("", text)
        self.stripped += n
        return cleaned

    def text(self, text: str) -> str:
        return self._clean(text).translate(_TEXT_ESCAPES)

    def attr(self, text: str) -> str:
        return self._clean(text).translate(_ATTR_ESCAPES)


def _is_reference(value: Mapping[str, Any]) -> bool:
    if "value" not in value or not isinstance(value["value"], str | int | float):
        return False
    if isinstance(value["value"], bool):
        return False
    return all(
        k in ("name", "type") and isinstance(v, str) for k, v in value.items() if k != "value"
    )


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    return str(value)


def _tag(name: str, esc: _Escaper) -> tuple[str, str]:
    """The element name and extra attribute text for a JSON key."""
    if _NAME.fullmatch(name):
        return name, ""
    return "Field", f' name="{esc.attr(name)}"'


def _element(
    out: list[str], name: str, value: Any, depth: int, esc: _Escaper, attrs: str = ""
) -> None:
    pad = "  " * depth
    if isinstance(value, list):
        for item in value:
            _element(out, name, item, depth, esc, attrs)
        return
    tag, extra = _tag(name, esc)
    extra += attrs
    # a reference's name/type become attributes, so only on an element without any yet
    if value is None:
        out.append(f'{pad}<{tag}{extra} xsi:nil="true"/>\n')
    elif isinstance(value, dict):
        if not extra and _is_reference(value):
            for key in ("name", "type"):
                if key in value:
                    extra += f' {key}="{esc.attr(value[key])}"'
            out.append(f"{pad}<{tag}{extra}>{esc.text(_scalar(value['value']))}</{tag}>\n")
        elif not value:
            out.append(f"{pad}<{tag}{extra}/>\n")
        else:
            out.append(f"{pad}<{tag}{extra}>\n")
            for key, child in value.items():
                _element(out, key, child, depth + 1, esc)
            out.append(f"{pad}</{tag}>\n")
    else:
        out.append(f"{pad}<{tag}{extra}>{esc.text(_scalar(value))}</{tag}>\n")


def record_xml(element: str, payload: Mapping[str, Any], *, depth: int = 0) -> tuple[str, int]:
    """One record as an XML element (text) and the number of forbidden characters stripped.

    Args:
        element: The element name, the entity's JSON key (``Invoice``).
        payload: The record.
        depth: The indentation level.
    """
    esc = _Escaper()
    as_attrs = [
        key for key in RECORD_ATTRIBUTES if isinstance(payload.get(key), str | bool | int | float)
    ]
    attrs = "".join(f' {key}="{esc.attr(_scalar(payload[key]))}"' for key in as_attrs)
    body = {k: v for k, v in payload.items() if k not in as_attrs}
    out: list[str] = []
    _element(out, element, body, depth, esc, attrs)
    return "".join(out), esc.stripped


class XmlWriter:
    """Writes the XML files of one entity, part by part."""

    format = "xml"

    def __init__(
        self,
        entity: str,
        element: str,
        out_dir: Path,
        *,
        company: str,
        stamp: str,
        server_time: datetime,
        total: int | None = None,
        per_file: int | None = None,
    ) -> None:
        self.entity = entity
        self.element = element
        self.out_dir = out_dir
        self.company = company
        self.stamp = stamp
        self.time = server_time.isoformat()
        self.total = total
        self.per_file = per_file
        self._file: AtomicFile | None = None
        self._part = 0
        self._records = 0
        self._stripped = 0
        self._start = 1

    def begin_part(self, part: int) -> None:
        """Open the file of part ``part`` and write the envelope's opening."""
        name = file_name(self.company, self.entity, self.stamp, part, "xml")
        self._file = AtomicFile(self.out_dir / name).__enter__()
        self._part = part
        self._records = 0
        self._stripped = 0
        counts = f' startPosition="{self._start}"'
        if self.total is not None:
            left = max(self.total - self._start + 1, 0)
            returned = min(left, self.per_file) if self.per_file else left
            counts += f' maxResults="{returned}" totalCount="{self.total}"'
        head = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<IntuitResponse xmlns="{NAMESPACE}" xmlns:xsi="{XSI}" time="{self.time}">\n'
            f"  <QueryResponse{counts}>\n"
        )
        self._file.write(head.encode())

    def add(self, key: str, payload: Mapping[str, Any], raw: str) -> None:
        """Write one record."""
        assert self._file is not None, "begin_part() first"
        text, stripped = record_xml(self.element, payload, depth=2)
        self._stripped += stripped
        self._file.write(text.encode())
        self._records += 1

    def end_part(self) -> list[ExportedFile]:
        """Close the envelope and the file and describe it."""
        assert self._file is not None, "begin_part() first"
        self._file.write(b"  </QueryResponse>\n</IntuitResponse>\n")
        fh, self._file = self._file, None
        fh.__exit__(None, None, None)
        self._start += self._records
        notes = {"stripped_characters": self._stripped} if self._stripped else {}
        return [
            ExportedFile(
                name=fh.path.name,
                entity=self.entity,
                table="",
                format="xml",
                part=self._part,
                records=self._records,
                rows=self._records,
                bytes=fh.size,
                sha256=fh.sha256,
                notes=notes,
            )
        ]

    def abort(self) -> None:
        """Remove the temporary file of the current part."""
        if self._file is not None:
            self._file.__exit__(RuntimeError, RuntimeError("export failed"), None)
            self._file = None
