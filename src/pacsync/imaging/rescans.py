"""When an archive is scanned without anyone asking: periodically (every
``rescan_minutes``) and soon after its files change (a watched folder).

Each trigger carries an idempotency key, so that several workers asking for the
same scan at the same time queue one job."""

from __future__ import annotations

import datetime as dt


def due(last_scan_at: dt.datetime | None, rescan_minutes: int, now: dt.datetime) -> bool:
    """Whether a periodic rescan is due (never for ``rescan_minutes`` 0)."""
    if rescan_minutes <= 0:
        return False
    return last_scan_at is None or now - last_scan_at >= dt.timedelta(minutes=rescan_minutes)


def periodic_key(name: str, rescan_minutes: int, now: dt.datetime) -> str:
    """The same key for every request in one period of the archive's rescan interval."""
    period = int(now.replace(tzinfo=dt.UTC).timestamp()) // (max(rescan_minutes, 1) * 60)
    return f"archive-rescan:{name}:{rescan_minutes}:{period}"


def settled(changed_at: float | None, now: float, quiet_s: float) -> bool:
    """Whether files changed and then nothing for ``quiet_s`` (a copy has finished)."""
    return changed_at is not None and now - changed_at >= quiet_s


def watch_key(name: str, changed_at: float) -> str:
    return f"archive-watch:{name}:{changed_at:.3f}"
