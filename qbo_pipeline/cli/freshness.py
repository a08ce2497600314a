"""Whether the warehouse shows the lake as it is, and building it when it does not.

``diff`` and ``sql`` read the warehouse, which is built from the lake; a snapshot committed after
the last build is not in it. Rather than fail (no warehouse yet) or answer from an old build,
they build it first and say why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from qbo_pipeline.config import Settings


def stale_reason(settings: Settings) -> str | None:
    """Why the warehouse must be (re)built before it can answer, or None when it is current.

    Current means: it exists, was built over this lake, and holds exactly the lake's live
    snapshots of every company.

    Raises:
        ModelError: When there is no warehouse and the lake holds no snapshot to build one from.
    """
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.models.runner import ModelError
    from qbo_pipeline.models.sources import lake_root
    from qbo_pipeline.models.warehouse import connect

    path = Path(settings.warehouse_path)
    try:
        root = lake_root(settings.lake_url)
    except ModelError:
        return None  # no lake to compare with: answer from the warehouse there is
    lake = Lake(settings.lake_url)
    in_lake = {
        (realm_id, info.snapshot_id)
        for realm_id in lake.realms()
        for info in lake.realm(realm_id).snapshots()
    }
    if not path.exists():
        if not in_lake:
            raise ModelError(
                f"no warehouse at {path}, and the lake at {settings.lake_url} holds no snapshot "
                "to build one from: run `qbo-backup backup` (then `qbo-backup warehouse build`)"
            )
        return f"there is no warehouse at {path} yet"
    try:
        con = connect(path, read_only=True)
    except Exception:
        return None
    try:
        built_over = con.execute("select lake_root from main.build_info").fetchone()
        in_warehouse = set(
            con.execute(
                "select realm_id, snapshot_id from marts.snapshots where status = 'live'"
            ).fetchall()
        )
    except duckdb.Error:
        return f"the warehouse at {path} was not built by this version"
    finally:
        con.close()
    if built_over and built_over[0] != root:
        return f"the warehouse at {path} was built over another lake ({built_over[0]})"
    missing = sorted(in_lake - in_warehouse)
    if missing:
        newest = missing[-1][1]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return f"the warehouse does not hold snapshot {newest}{more} yet"
    gone = in_warehouse - in_lake
    if gone:
        return f"the warehouse still holds {len(gone)} snapshot(s) the lake has since retired"
    return None


def ensure_current(settings: Settings, say: Callable[[str], None]) -> None:
    """Build the warehouse when :func:`stale_reason` finds a reason, saying it through ``say``.

    A lake on object storage that cannot be read here (no credentials: an analyst's machine
    given only the warehouse, whose ``lake.*`` are tables) is said, and the warehouse answers
    as it was built.

    Raises:
        ModelError: When the build fails (a failed model or column test).
    """
    from qbo_pipeline.lake.fs import is_remote
    from qbo_pipeline.models.warehouse import build_warehouse

    try:
        reason = stale_reason(settings)
    except Exception as exc:  # the store's client raises its own errors (NoCredentialsError...)
        if not is_remote(settings.lake_url) or not Path(settings.warehouse_path).exists():
            raise
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        say(
            f"could not read the lake at {settings.lake_url} ({why}); answering from the "
            "warehouse as it was built"
        )
        return
    if reason is None:
        return
    say(f"{reason}: building it first (`qbo-backup warehouse build`)")
    result = build_warehouse(settings.lake_url, settings.warehouse_path)
    say(f"built {len(result.models)} models in {result.seconds:.1f} s")
