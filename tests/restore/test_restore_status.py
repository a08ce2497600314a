"""The append-only step status: folding, torn lines, one line per step."""

from __future__ import annotations

from pathlib import Path

from qbo_pipeline.restore import status
from qbo_pipeline.restore.store import PlanStore
from tests.restore.test_restore_units import make_plan

PLAN = "20260101T000000.000000Z-0000beef"


def test_fold_keeps_the_last_entry_of_each_step_and_fills_the_rest_as_not_started():
    lines = [
        status.run_line(1, 3),
        status.step_line(
            1,
            {"state": "done", "attempts": 1, "new_id": "9", "at": "a"},
            id_map={"Invoice:1": "9"},
            records={"Invoice:9": {"sync_token": "0"}},
        ),
        status.step_line(2, {"state": "failed", "attempts": 1, "detail": "500", "at": "b"}),
        status.run_line(2, 3),
        status.step_line(2, {"state": "done", "attempts": 2, "at": "c"}),
    ]
    folded = status.fold(PLAN, lines)
    assert folded is not None
    assert folded["runs"] == 2
    assert folded["steps"]["1"] == {"state": "done", "attempts": 1, "new_id": "9", "at": "a"}
    assert folded["steps"]["2"] == {"state": "done", "attempts": 2, "at": "c"}
    assert folded["steps"]["3"] == {"state": "not_started", "attempts": 0}
    assert folded["id_map"] == {"Invoice:1": "9"}
    assert folded["records"] == {"Invoice:9": {"sync_token": "0"}}
    assert folded["updated_at"] == "c"
    assert status.fold(PLAN, []) is None


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path: Path):
    store = PlanStore(str(tmp_path / "restore"))
    store.save(make_plan(PLAN))
    log = store.status_log(PLAN)
    log.append(status.run_line(1, 1))
    path = Path(store.location(PLAN, "status.jsonl"))
    with path.open("ab") as handle:
        handle.write(b'{"event": "step", "number": 1, "state": "do')  # crash mid-line
    assert store.status(PLAN)["steps"]["1"]["state"] == "not_started"
    log.append(status.step_line(1, {"state": "done", "attempts": 1, "at": "x"}))
    assert store.status(PLAN)["steps"]["1"]["state"] == "done"
    assert len(path.read_bytes().splitlines()) == 3
