"""Process exit codes, as Python would give them."""

from __future__ import annotations

import pytest

from qbo_pipeline.shutdown import exit_code


@pytest.mark.parametrize(
    ("value", "code"), [(None, 0), (0, 0), (3, 3), (256 + 4, 4), ("stopped: bad input", 1)]
)
def test_exit_codes_follow_python(value: object, code: int, capsys) -> None:
    assert exit_code(value) == code
    if isinstance(value, str):
        assert value in capsys.readouterr().err
