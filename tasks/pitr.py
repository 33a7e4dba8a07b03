"""Point-in-time recovery as the plan sees it: which schema revision the database had at
a time, from the server's own records (pure code, unit-tested)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def _at(text) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def revision_at(backups: list[dict], migrations: list[dict], when: datetime) -> tuple[list[str] | None, str]:
    """(the alembic revision(s) of the database at ``when``, where that comes from), or
    (None, why) when the records cannot tell: ``backups`` as the Backups fact lists them
    (each with its time and revision), ``migrations`` the migration records (srq-hpn-migrate's
    history: time, from, to, result, duration_s). A time during a migration cannot be told."""
    known: list[tuple[datetime, list[str], str]] = []
    for backup in backups:
        at = _at(backup.get("time"))
        if at is not None and at <= when:
            known.append((at, list(backup.get("revision") or []), f"backup {backup.get('name')}"))
    for record in migrations:
        if record.get("result") != "migrated":
            continue
        started = _at(record.get("time"))
        if started is None:
            continue
        ended = started + timedelta(seconds=float(record.get("duration_s") or 0) + 1)
        if started <= when < ended:
            return None, (f"{when:%Y-%m-%dT%H:%M:%SZ} falls during the migration {record.get('from')} -> "
                          f"{record.get('to')} (from {record.get('time')}, {record.get('duration_s')}s): choose a "
                          "time before or after it")
        if ended <= when:
            to = [part for part in str(record.get("to") or "").split(",") if part and part != "none"]
            known.append((ended, to, f"the migration to {record.get('to')} at {record.get('time')}"))
    if not known:
        return None, "no backup or migration record of this server is older than that time"
    at, revision, source = max(known, key=lambda item: item[0])
    return revision, source
