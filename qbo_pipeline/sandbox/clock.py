"""How the sandbox writes times: in the company's Pacific time zone, as QBO does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

try:
    from zoneinfo import ZoneInfo

    COMPANY_TZ: tzinfo = ZoneInfo("America/Los_Angeles")
except Exception:  # pragma: no cover - no tz database on this machine
    COMPANY_TZ = timezone(timedelta(hours=-8), "PST")


def qbo_time(when: datetime, *, millis: bool = False) -> str:
    """Format a time like QBO: ``2015-10-07T11:43:20-07:00`` (``.123`` with ``millis``).

    Raises:
        ValueError: If the time is naive.
    """
    if when.tzinfo is None:
        raise ValueError(f"time {when.isoformat()} has no time zone")
    local = when.astimezone(COMPANY_TZ)
    return local.isoformat(timespec="milliseconds" if millis else "seconds")
