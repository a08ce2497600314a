"""Find the ``dbt_like_sql`` models folder: a checkout, an installed wheel, or ``QBO_SQL_DIR``.

The folder lives at the repository root, beside the ``qbo_pipeline`` package, so a checkout and an
editable install read it in place. A wheel installs it as data files under
``<prefix>/share/qbo_pipeline/dbt_like_sql`` (``[tool.setuptools.data-files]``); the installed
distribution's file list says exactly where, whatever the install scheme (venv, ``--user``,
``--prefix``). ``QBO_SQL_DIR`` overrides both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

from qbo_pipeline import config

FOLDER = "dbt_like_sql"
DISTRIBUTION = "qbo_pipeline"
SHARE = Path("share") / DISTRIBUTION / FOLDER
"""Where a wheel's data files put the folder, relative to the install prefix."""


class SqlDirNotFoundError(LookupError):
    """No models folder was found; the message lists where the runner looked."""


def find_sql_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The models folder to build from.

    Args:
        environ: The environment to read ``QBO_SQL_DIR`` from (``os.environ`` by default).

    Returns:
        ``QBO_SQL_DIR`` when set, else the checkout's folder, else the installed one.

    Raises:
        SqlDirNotFoundError: If ``QBO_SQL_DIR`` names no folder, or no folder is found at all.
    """
    override = config.sql_dir(environ)
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise SqlDirNotFoundError(f"{config.SQL_DIR_VAR}={override!r} is not a folder")
        return path
    looked: list[str] = []
    for candidate in _candidates():
        if candidate.is_dir():
            return candidate
        looked.append(str(candidate))
    raise SqlDirNotFoundError(
        f"the SQL models folder was not found (looked in {', '.join(looked) or 'nowhere'}); "
        f"set {config.SQL_DIR_VAR} to the {FOLDER} folder"
    )


def _candidates() -> Iterator[Path]:
    yield Path(__file__).resolve().parents[2] / FOLDER
    installed = installed_sql_dir()
    if installed is not None:
        yield installed
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        yield Path(prefix) / SHARE


def installed_sql_dir(distribution: metadata.Distribution | None = None) -> Path | None:
    """The folder as an installed distribution recorded it (any install scheme), if it did.

    Args:
        distribution: The installed ``qbo_pipeline`` distribution (looked up by default).
    """
    if distribution is None:
        try:
            distribution = metadata.distribution(DISTRIBUTION)
        except metadata.PackageNotFoundError:
            return None
    for file in distribution.files or ():
        if file.suffix != ".sql" or FOLDER not in file.parts:
            continue
        located = Path(os.path.normpath(str(file.locate())))
        for parent in located.parents:
            if parent.name == FOLDER:
                return parent
    return None
