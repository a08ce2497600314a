"""Review a plan: a rich table for the terminal and a self-contained HTML page.

Both show every step (number, record, action, why, conflicts) and the HTML page adds each step's
field-level changes (path, live value, snapshot value), says what each column means, and ends
with the exact commands that approve and apply the plan. A transaction voided since the snapshot
is shown as voided, as ``diff`` shows it, with what QBO allows for it. Values from the books are
escaped, so a customer named ``<script>`` stays text.
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


VOIDED_NOTE = (
    "voided in QBO since the snapshot. QBO has no un-void: this update writes the snapshot's "
    "lines and amounts back onto the voided transaction, which keeps its id (QBO's audit log "
    "keeps the void)"
)
"""What a plan says of a transaction voided since its snapshot."""

COLUMNS = (
    ("#", "the step's number; steps run in this order, each after the steps it depends on"),
    ("Record", "the entity and the record's id in the snapshot"),
    ("Name", "its name or document number"),
    (
        "Action",
        "create: re-create a deleted record (QBO gives it a new id, and every later step that "
        "refers to it uses the new one); update: write the snapshot's version over the live "
        "one; reactivate / deactivate: switch a list record's Active flag; delete: remove a "
        "record created after the snapshot (--remove-new); map: use the live record of the same "
        "name; skip: nothing to do; unsupported: QBO's API cannot restore it (the reason says why)",
    ),
    (
        "Why and what changes",
        "why the step is needed, and field by field what is live now and what the restore "
        "writes (the snapshot's value); a conflict shows the incident snapshot's value too",
    ),
    (
        "After",
        "the steps that must be done before this one: the records it refers to (a customer "
        "before its invoice, a payment before the deposit that holds it)",
    ),
)
"""The HTML review's columns and what each means."""


def is_voided(step: Step) -> bool:
    """Whether the step reverts a transaction voided since the snapshot.

    As ``diff`` tells a void: its ``PrivateNote`` now starts with "Voided" and did not before.
    """
    if step.action is not Action.UPDATE:
        return False
    for change in step.changes:
        if change.path == "PrivateNote":
            now, then = str(change.live or ""), str(change.snapshot or "")
            return now.startswith("Voided") and not then.startswith("Voided")
    return False


def _action(step: Step) -> str:
    return f"{step.action.value} (voided)" if is_voided(step) else step.action.value


def _reason(step: Step) -> str:
    return f"{VOIDED_NOTE}. {step.reason}" if is_voided(step) else step.reason


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
    table.add_column("After steps")  # the steps this one waits for
    if status:
        table.add_column("State")
    for step in plan.steps[:limit]:
        why = _reason(step)
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
            f"[{_STYLE[step.action]}]{_action(step)}[/]",
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
            f"<td>{e(_action(step))}</td><td>{conflict}{e(_reason(step))}{detail}</td>"
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
    legend = "".join(f"<dt>{e(name)}</dt><dd>{e(text)}</dd>" for name, text in COLUMNS)
    if status:
        legend += "<dt>State</dt><dd>how far the step got when the plan was applied</dd>"
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
dt {{ font-weight: bold; }} dd {{ margin: 0 0 .4rem 1.5rem; }}
pre {{ background: #f4f4f4; padding: .5rem; }}
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
<details open><summary>What the columns mean</summary><dl>{legend}</dl></details>
<table><tr><th>#</th><th>Record</th><th>Name</th><th>Action</th><th>Why and what changes</th>
<th>After</th>{state_head}</tr>
{"".join(rows)}
</table>
{_next_steps(plan)}
</body></html>
"""


def _next_steps(plan: Plan) -> str:
    """The page's end: the exact commands that approve and apply the plan, then follow it up."""
    e = html.escape
    conflicts = plan.summary().get("conflict", 0)
    apply = f'qbo-backup restore apply {plan.plan_id} --approve --as "Your Name"'
    lines = [
        f"<p>Nothing has been written to QBO. When this plan is right, approve and apply it "
        f"(rerun the same command to resume after a failure):</p><pre>{e(apply)}</pre>"
    ]
    if conflicts:
        lines.append(
            f"<p>The {conflicts} step(s) marked as conflicts are written only if you also "
            f"approve them:</p><pre>{e(apply)} --include-conflicts</pre>"
        )
    lines.append(
        "<p>Then follow it up, and see the verification against a fresh snapshot:</p>"
        f"<pre>{e(f'qbo-backup restore status {plan.plan_id}')}</pre>"
    )
    return '<h2 id="next">Approve and apply</h2>' + "".join(lines)


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
