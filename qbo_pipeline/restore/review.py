"""Review a plan: a rich table for the terminal and a self-contained HTML page.

Both show every step (number, record, action, why, conflicts) and the HTML page adds each step's
field-level changes (path, live value, snapshot value). Values from the books are escaped, so a
customer named ``<script>`` stays text.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from qbo_pipeline.restore.model import Action, Plan, Step

_STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REACTIVATE: "cyan",
    Action.DEACTIVATE: "magenta",
    Action.DELETE: "red",
    Action.MAP: "blue",
    Action.SKIP: "dim",
    Action.UNSUPPORTED: "bold red",
}


def _state(status: dict[str, Any] | None, step: Step) -> str:
    if not status:
        return ""
    entry = (status.get("steps") or {}).get(str(step.number)) or {}
    return str(entry.get("state", "not_started"))


def summary_line(plan: Plan) -> str:
    """One line of counts: ``3 create, 1 update, ... (2 conflicts)``."""
    counts = plan.summary()
    parts = [f"{counts[a.value]} {a.value}" for a in Action if counts.get(a.value)]
    text = ", ".join(parts) or "nothing to do"
    if counts["conflict"]:
        text += f" ({counts['conflict']} conflict{'s' if counts['conflict'] > 1 else ''})"
    return text


def plan_table(plan: Plan, status: dict[str, Any] | None = None, *, limit: int = 200) -> Table:
    """The plan's steps as a rich table (with their apply state when ``status`` is given)."""
    table = Table(
        title=f"Restore plan {plan.plan_id}: to snapshot {plan.snapshot_id}",
        caption=summary_line(plan),
        show_lines=False,
    )
    table.add_column("#", justify="right")
    table.add_column("Record")
    table.add_column("Name", overflow="fold")
    table.add_column("Action")
    table.add_column("Why", overflow="fold")
    table.add_column("Changes", justify="right")
    table.add_column("After")
    if status:
        table.add_column("State")
    for step in plan.steps[:limit]:
        why = step.reason
        if step.conflict:
            why = f"[bold red]CONFLICT[/]: {step.conflict}\n{why}"
            for change in step.incident_changes[:5]:
                why += (
                    f"\n  since the incident: {change.path}: "
                    f"{_short(change.snapshot)} -> {_short(change.live)}"
                )
            if len(step.incident_changes) > 5:
                why += f"\n  ... and {len(step.incident_changes) - 5} more field(s)"
        row = [
            str(step.number),
            f"{step.entity} {step.old_id}",
            step.name or "",
            f"[{_STYLE[step.action]}]{step.action.value}[/]",
            why,
            str(len(step.changes)) if step.changes else "",
            ", ".join(str(n) for n in step.depends_on),
        ]
        if status:
            row.append(_state(status, step))
        table.add_row(*row)
    if len(plan.steps) > limit:
        table.add_row("...", f"{len(plan.steps) - limit} more steps", "", "", "", "", "")
    return table


def _short(value: Any, width: int = 40) -> str:
    """A value in one short line (for the terminal table)."""
    text = "(none)" if value is None else value if isinstance(value, str) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(value: Any) -> str:
    if value is None:
        return '<span class="none">(none)</span>'
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return html.escape(text)


def plan_html(plan: Plan, status: dict[str, Any] | None = None) -> str:
    """The plan as one self-contained HTML page with field-level changes."""
    e = html.escape
    rows = []
    for step in plan.steps:
        detail = _changes_html(step, plan)
        if step.action is Action.CREATE and step.payload:
            body = e(orjson.dumps(step.payload, option=orjson.OPT_INDENT_2).decode())
            detail += f"<details><summary>payload to send</summary><pre>{body}</pre></details>"
        conflict = (
            f'<div class="conflict">Conflict: {e(step.conflict)}</div>' if step.conflict else ""
        )
        state = f"<td>{e(_state(status, step))}</td>" if status else ""
        rows.append(
            f'<tr class="{e(step.action.value)}"><td>{step.number}</td>'
            f"<td>{e(step.entity)} {e(step.old_id)}</td><td>{e(step.name or '')}</td>"
            f"<td>{e(step.action.value)}</td><td>{conflict}{e(step.reason)}{detail}</td>"
            f"<td>{e(', '.join(str(n) for n in step.depends_on))}</td>{state}</tr>"
        )
    notes = "".join(f"<li>{e(n)}</li>" for n in plan.notes)
    identical = ", ".join(f"{e(k)}: {v}" for k, v in plan.identical.items()) or "none"
    approval = plan.approval or {}
    approved = (
        f"approved by {e(str(approval.get('approved_by')))} on {e(str(approval.get('host')))} "
        f"at {e(str(approval.get('approved_at')))}"
        if approval
        else "not approved"
    )
    state_head = "<th>State</th>" if status else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Restore plan {e(plan.plan_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ddd; padding: .35rem .5rem; vertical-align: top; text-align: left; }}
th {{ background: #f4f4f4; }}
table.changes {{ margin-top: .4rem; font-size: .9em; }}
.create td:nth-child(4) {{ color: #17803d; }} .update td:nth-child(4) {{ color: #a26b00; }}
.delete td:nth-child(4), .unsupported td:nth-child(4) {{ color: #b3261e; }}
.skip {{ color: #888; }} .conflict {{ color: #b3261e; font-weight: bold; }}
.none {{ color: #999; font-style: italic; }} code {{ font-size: .95em; }}
tr.later td {{ color: #b3261e; }}
</style></head><body>
<h1>Restore plan {e(plan.plan_id)}</h1>
<p>Company {e(plan.company_name or plan.realm_id)} (realm {e(plan.realm_id)}): restore to
snapshot <b>{e(plan.snapshot_id)}</b>; scope {e(str(plan.scope.get("kind")))};
live company read at {e(plan.live_read_at)}; latest snapshot {e(str(plan.latest_snapshot_id))};
incident snapshot {e(str(plan.incident_snapshot_id))} (records changed after it are conflicts).
</p>
<p><b>{e(summary_line(plan))}</b>; identical records: {identical}. Status: {approved}.</p>
<ul>{notes}</ul>
<table><tr><th>#</th><th>Record</th><th>Name</th><th>Action</th><th>Why and what changes</th>
<th>After</th>{state_head}</tr>
{"".join(rows)}
</table>
</body></html>
"""


def _changes_html(step: Step, plan: Plan) -> str:
    """A step's field changes; for a conflict, the three versions of each field that differs."""
    e = html.escape
    if not step.conflict or not step.incident_changes:
        changes = "".join(
            f"<tr><td><code>{e(c.path)}</code></td><td>{_value(c.live)}</td>"
            f"<td>{_value(c.snapshot)}</td></tr>"
            for c in step.changes
        )
        if not changes:
            return ""
        return (
            '<table class="changes"><tr><th>Field</th><th>Now (live)</th>'
            f"<th>After the restore (snapshot)</th></tr>{changes}</table>"
        )
    target = {c.path: c for c in step.changes}
    incident = {c.path: c for c in step.incident_changes}
    rows = []
    for path in sorted(set(target) | set(incident)):
        now = (target.get(path) or incident[path]).live
        snap = target[path].snapshot if path in target else now
        at_incident = incident[path].snapshot if path in incident else now
        mark = ' class="later"' if path in incident else ""
        rows.append(
            f"<tr{mark}><td><code>{e(path)}</code></td><td>{_value(snap)}</td>"
            f"<td>{_value(at_incident)}</td><td>{_value(now)}</td></tr>"
        )
    return (
        f'<table class="changes"><tr><th>Field</th><th>Target snapshot {e(plan.snapshot_id)}</th>'
        f"<th>Incident snapshot {e(str(plan.incident_snapshot_id))}</th><th>Now (live)</th>"
        f"</tr>{''.join(rows)}</table>"
        "<div>Rows marked in red changed after the incident: someone's later work.</div>"
    )


def write_html(plan: Plan, path: str | Path, status: dict[str, Any] | None = None) -> Path:
    """Write :func:`plan_html` to ``path``; returns it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(plan_html(plan, status), encoding="utf-8")
    return target
