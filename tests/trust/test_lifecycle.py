"""The bounded random-history run of the whole lifecycle (the long one is ``make soak``)."""

from __future__ import annotations

from pathlib import Path

from hypothesis.stateful import run_state_machine_as_test

from tests.trust.lifecycle import BOUNDED, TALLY, machine_for


def test_random_histories_keep_every_invariant(sandbox_template: Path, tmp_path: Path) -> None:
    before = TALLY.steps
    with machine_for(sandbox_template, tmp_path) as machine:
        run_state_machine_as_test(machine, settings=BOUNDED)
    assert TALLY.steps > before
