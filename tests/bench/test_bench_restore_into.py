"""The restore-into benchmark's ceilings and figures in words (issue #20)."""

from __future__ import annotations

import pytest

from bench.restore_into import BATCH_CEILING, SINGLE_CEILING, _size, describe


def test_write_ceilings_follow_qbo_limits():
    assert SINGLE_CEILING == pytest.approx(500 / 60)
    # 40 batch requests of 30 writes a minute, and the other 460 requests one write each.
    assert BATCH_CEILING == pytest.approx((40 * 30 + 460) / 60)


@pytest.mark.parametrize(("text", "size"), [("10k", 10_000), ("100K", 100_000), ("1m", 10**6)])
def test_sizes_read_like_the_main_benchmark(text, size):
    assert _size(text) == size


def test_the_figures_say_the_share_of_each_ceiling():
    line = describe(
        {
            "transactions": 10_000,
            "records": 14_525,
            "backup_s": 60.0,
            "plan_s": 20.0,
            "plan_calls": 30,
            "steps": 14_600,
            "apply_s": 730.0,
            "writes": 14_400,
            "apply_calls": 520,
            "apply_calls_by_topic": {"batch": 490, "Attachable": 30},
            "writes_per_s": 14_400 / 730.0,
            "share_of_single_ceiling": (14_400 / 730.0) / SINGLE_CEILING,
            "share_of_batch_ceiling": (14_400 / 730.0) / BATCH_CEILING,
            "states": {"done": 14_400},
        }
    )
    assert "14,400 writes in 520 API calls (490 batch)" in line
    assert "237% of the one-request-per-write ceiling (8.33/s)" in line
    assert "71% of the batch ceiling (27.7/s)" in line
