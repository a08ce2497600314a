"""The suite's own scheduling: pytest-xdist starts the longest files first (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import LONGEST_FILES

ROOT = Path(__file__).resolve().parents[1]


def test_every_longest_file_exists() -> None:
    """A renamed or removed file would silently drop out of the order."""
    missing = [name for name in LONGEST_FILES if not (ROOT / name).is_file()]
    assert missing == []
    assert len(set(LONGEST_FILES)) == len(LONGEST_FILES)


def test_xdist_keeps_the_collection_order_of_files(pytestconfig: pytest.Config) -> None:
    """Its default hands out the files with the most tests first, whatever LONGEST_FILES says."""
    assert getattr(pytestconfig.option, "loadscopereorder", False) is False
