"""The restore plan's review (terminal table and HTML page): what it explains (issue #21)."""

from __future__ import annotations

import html
import io
import re

from rich.console import Console

from qbo_pipeline.restore.changes import FieldChange
from qbo_pipeline.restore.model import Action, Plan, Step
from qbo_pipeline.restore.review import COLUMNS, VOIDED_NOTE, is_voided, plan_html, plan_table

PLAN_ID = "20250107T173231.009000Z-b9e8e817"


def _plan(*steps: Step) -> Plan:
    return Plan(
        plan_id=PLAN_ID,
        realm_id="9341450000000001",
        snapshot_id="20250107T173231.009000Z",
        latest_snapshot_id="20250107T173231.623000Z",
        scope={"kind": "changed_since"},
        live_read_at="2025-01-07T17:33:00Z",
        created_at="2026-12-07T00:00:00Z",
        steps=list(steps),
    )


def _voided_invoice() -> Step:
    return Step(
        number=2,
        entity="Invoice",
        old_id="130",
        action=Action.UPDATE,
        reason="changed since the snapshot: reverted to the snapshot version",
        name="1037",
        payload={"Id": "130"},
        depends_on=[1],
        changes=[
            FieldChange("PrivateNote", "Voided", None),
            FieldChange("TotalAmt", 0, 362.07),
            FieldChange("Line[0].Amount", 0, 362.07),
        ],
    )


def _customer() -> Step:
    return Step(
        number=1,
        entity="Customer",
        old_id="24",
        action=Action.CREATE,
        reason="gone from the live company: re-created (it gets a new id)",
        name="Amy's Bird Sanctuary",
        payload={"DisplayName": "Amy's Bird Sanctuary"},
    )


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_html_review_explains_every_column_after_included() -> None:
    page = plan_html(_plan(_customer(), _voided_invoice()))
    text = _text(page)
    headings = re.findall(r"<th>([^<]+)</th>", page)
    for name, meaning in COLUMNS:
        assert name in headings, name
        assert f"{name} {meaning}" in text, name
    after = dict(COLUMNS)["After"]
    assert "must be done before this one" in after
    assert "What the columns mean" in text


def test_the_html_review_ends_with_the_exact_commands_to_approve_and_apply() -> None:
    page = plan_html(_plan(_customer(), _voided_invoice()))
    tail = _text(page[page.index('id="next"') :])
    assert f'qbo-backup restore apply {PLAN_ID} --approve --as "Your Name"' in tail
    assert f"qbo-backup restore status {PLAN_ID}" in tail
    assert "--include-conflicts" not in tail  # no conflict in this plan
    conflicted = _voided_invoice()
    conflicted.conflict = "changed after the incident"
    with_conflict = _text(plan_html(_plan(_customer(), conflicted)))
    assert (
        f'restore apply {PLAN_ID} --approve --as "Your Name" --include-conflicts' in with_conflict
    )
    # The commands come last: nothing but the end of the page follows them.
    assert page.rstrip().endswith("</body></html>")
    assert page.index('id="next"') > page.index("</table>")


def test_a_voided_transaction_is_shown_as_voided_with_what_qbo_allows() -> None:
    voided = _voided_invoice()
    assert is_voided(voided)
    assert not is_voided(_customer())
    page = _text(plan_html(_plan(_customer(), voided)))
    assert "update (voided)" in page
    assert "QBO has no un-void" in page
    assert VOIDED_NOTE in page
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(plan_table(_plan(_customer(), voided)))
    terminal = " ".join(console.export_text().split())
    assert "update (voided)" in terminal
    # A transaction voided in the snapshot too is not news: shown as the update it is.
    old_void = _voided_invoice()
    old_void.changes = [FieldChange("PrivateNote", "Voided twice", "Voided"), *old_void.changes[1:]]
    assert not is_voided(old_void)
