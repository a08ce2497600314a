"""The HTML change review: one self-contained page a bookkeeper can read and file.

Grouped by company and entity, each record with its action and a before/after table of the
fields that changed. Every value from the books is HTML-escaped; the page loads nothing external.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from itertools import groupby

from qbo_pipeline.models.diff import ACTIONS, Diff, RecordChange

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2433}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{margin-top:2rem;border-bottom:2px solid #d8dee9}
h3{margin:1.25rem 0 .25rem;font-size:1.05rem}.meta{color:#5b6475}
table{border-collapse:collapse;margin:.25rem 0 1rem;min-width:40%}
th,td{border:1px solid #d8dee9;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.num{text-align:right}.path{font-family:ui-monospace,monospace}
.old{background:#fdecea}.new{background:#e8f5e9}.none{color:#98a2b3;font-style:italic}
.tag{display:inline-block;border-radius:4px;padding:0 .4rem;font-size:.8rem;color:#fff}
.added{background:#2e7d32}.deleted{background:#c62828}.changed{background:#1565c0}
.deactivated{background:#6d4c41}.reactivated{background:#00838f}.voided{background:#ad1457}
"""


def _value(value: str | None) -> str:
    if value is None:
        return '<span class="none">(absent)</span>'
    return escape(value)


def _record(change: RecordChange) -> str:
    title = escape(change.display_name or f"{change.entity} {change.record_id}")
    facts = [f"{escape(change.entity)} id {escape(change.record_id)}"]
    for label, old, new in (
        ("amount", change.amount_old, change.amount_new),
        ("balance", change.balance_old, change.balance_new),
    ):
        if old != new:
            facts.append(f"{label} {_value(old)} &rarr; {_value(new)}")
    if change.changed_by:
        facts.append(f"last changed by user {escape(change.changed_by)}")
    parts = [
        f'<h3><span class="tag {escape(change.action)}">{escape(change.action)}</span> '
        f"{title}</h3>",
        f'<p class="meta">{" &middot; ".join(facts)}</p>',
    ]
    if change.fields:
        parts.append("<table><tr><th>Field</th><th>Before</th><th>After</th></tr>")
        parts.extend(
            f'<tr><td class="path">{escape(f.path)}</td>'
            f'<td class="old">{_value(f.old_value)}</td>'
            f'<td class="new">{_value(f.new_value)}</td></tr>'
            for f in change.fields
        )
        parts.append("</table>")
    elif change.action in ("changed", "voided", "deactivated", "reactivated"):
        parts.append('<p class="none">Only system fields (MetaData, SyncToken) changed.</p>')
    return "\n".join(parts)


def render_review(diff: Diff, *, title: str = "QuickBooks change review") -> str:
    """The diff as one self-contained HTML page."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="meta">From <b>{escape(diff.old_ref)}</b> to <b>{escape(diff.new_ref)}</b>'
        f" &middot; generated {generated}</p>"
    )
    body = [head]
    if not diff.changes:
        body.append("<p>No record changed between these snapshots.</p>")
    summary = diff.summary()
    for realm, (old_sid, new_sid) in diff.snapshots.items():
        rows = [r for r in summary if r["realm_id"] == realm]
        body.append(
            f"<h2>Company {escape(realm)}</h2>"
            f'<p class="meta">Snapshot {escape(old_sid)} &rarr; {escape(new_sid)}</p>'
        )
        if rows:
            header = "".join(f"<th>{a}</th>" for a in ACTIONS)
            body.append(f"<table><tr><th>Entity</th>{header}</tr>")
            body.extend(
                f"<tr><td>{escape(r['entity'])}</td>"
                + "".join(f'<td class="num">{r[a] or ""}</td>' for a in ACTIONS)
                + "</tr>"
                for r in rows
            )
            body.append("</table>")
        realm_changes = [c for c in diff.changes if c.realm_id == realm]
        for entity, group in groupby(realm_changes, key=lambda c: c.entity):
            items = list(group)
            body.append(
                f'<h2 id="{escape(realm)}-{escape(entity)}">{escape(entity)} ({len(items)})</h2>'
            )
            body.extend(_record(c) for c in items)
    body.append("</body></html>")
    return "\n".join(body)
