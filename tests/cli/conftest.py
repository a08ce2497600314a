"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import build_data


@pytest.fixture(scope="session")
def cli_data_template(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder written by ``qbo-backup backup`` (see ``build_data``), built once; copy it."""
    return build_data(sandbox_template, tmp_path_factory.mktemp("cli-data") / "data")
