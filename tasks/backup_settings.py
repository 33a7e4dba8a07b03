"""Settings of the backups, the off-server copy, and the one-shot settings of the
restore drill and the restore: their rules (pure code, unit-tested)."""

from __future__ import annotations

import math
import os
import re
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path

from tasks.hostkeys import check_host_key
from tasks.layout import BACKUP_NAME_PATTERN, own_directory

DRILL_SOURCES = ("local", "offsite")
BACKUP_NAME_RE = re.compile(BACKUP_NAME_PATTERN)
# sftp:user@host:/path or sftp://user@host[:port]//path (restic's two SFTP forms).
SFTP_SHORT_RE = re.compile(r"^sftp:(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>/[A-Za-z0-9._/-]*)$")
SFTP_URL_RE = re.compile(
    r"^sftp://(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?/(?P<path>/[A-Za-z0-9._/-]*)$"
)
CHECK_SUBSET_RE = re.compile(r"^([0-9]+/[0-9]+|[0-9]+(\.[0-9]+)?%|[0-9]+[KMGT])$")
# An OnCalendar value: what systemd accepts is checked on the server; this only
# keeps the unit file well-formed.
CALENDAR_RE = re.compile(r"^[A-Za-z0-9*:,./~ _+-]{1,100}$")
# The newest backup may be this much older than the schedule's longest gap between two
# runs before it is stale (a run takes time; the timer may fire a little late).
BACKUP_AGE_SLACK_HOURS = 2
# The limit when the schedule's runs cannot be told (the daily default's: 24 + 2).
DEFAULT_BACKUP_MAX_AGE_HOURS = 26
UTC_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
# How long a commit may wait before its WAL segment is archived (archive_timeout).
WAL_TIMEOUT_RANGE = (5, 3600)
_ELAPSE_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})")


@dataclass(frozen=True)
class Offsite:
    """An SFTP target of the off-server copy, parsed from the restic repository."""

    repository: str
    user: str
    host: str
    port: int
    path: str


def offsite_target(repository: str) -> Offsite | None:
    """The SFTP target of a restic repository setting, or None if it is not one."""
    match = SFTP_SHORT_RE.fullmatch(repository) or SFTP_URL_RE.fullmatch(repository)
    if not match:
        return None
    port = int(match.groupdict().get("port") or 22)
    return Offsite(repository, match["user"], match["host"], port, match["path"])


def backup_max_age_hours(elapses: list[str]) -> int:
    """How old the newest backup may be before it is stale, for a schedule whose next runs
    are ``elapses`` (as systemd-analyze prints them): its longest gap between two runs,
    plus a slack; a weekly schedule is not stale after a day (pure; unit-tested)."""
    times = []
    for text in elapses:
        found = _ELAPSE_RE.search(text)
        if found:
            times.append(datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S"))
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]
    if not gaps:
        return DEFAULT_BACKUP_MAX_AGE_HOURS
    return math.ceil(max(gaps) / 3600) + BACKUP_AGE_SLACK_HOURS


def check_backups(merged: dict) -> list[str]:
    """The backup directory, schedule and off-server copy."""
    problems = []
    directory = merged["backup_dir"]
    if not own_directory(directory):
        problems.append(f"backup_dir must be an absolute path of its own (letters, digits, . _ - /), got {directory!r}")
    else:
        inside = directory.rstrip("/") + "/"
        for key in ("srq_hpn_app_dir", "srq_hpn_state_dir"):
            other = merged[key].rstrip("/") + "/"
            if inside.startswith(other) or other.startswith(inside):
                problems.append(f"backup_dir must be outside {key} ({merged[key]}), and not contain it")
    if not CALENDAR_RE.fullmatch(merged["backup_schedule"]):
        problems.append(
            f"backup_schedule must be a systemd OnCalendar value such as 'daily' or '*-*-* 03:15:00', "
            f"got {merged['backup_schedule']!r}"
        )
    repository = merged["backup_offsite_repository"]
    if repository:
        if offsite_target(repository) is None:
            problems.append(
                "backup_offsite_repository must be a restic SFTP repository, sftp:user@host:/path or "
                f"sftp://user@host:port//path, got {repository!r}"
            )
        key_path = merged["backup_offsite_ssh_key"]
        if not key_path:
            problems.append("backup_offsite_ssh_key is required with backup_offsite_repository: the local path of "
                            "the SSH key that logs in to the backup host")
        elif not Path(key_path).expanduser().is_file() or not os.access(Path(key_path).expanduser(), os.R_OK):
            problems.append(f"backup_offsite_ssh_key {key_path!r} is not a readable file")
    problems += check_host_key("backup_offsite_host_key", merged["backup_offsite_host_key"])
    target = offsite_target(repository) if repository else None
    if target and not merged["backup_offsite_host_key"] and not merged["backup_offsite_accept_new_host_key"]:
        problems.append(
            f"backup_offsite_host_key is required with backup_offsite_repository ({target.host}): whoever answers "
            "the server's first connection would receive every backup. Set it to the backup host's key "
            f"(ssh-keyscan -p {target.port} {target.host}, checked against its /etc/ssh/ssh_host_*_key.pub), or "
            "set backup_offsite_accept_new_host_key = True to trust the key shown at the first connection")
    low, high = WAL_TIMEOUT_RANGE
    if not low <= merged["backup_wal_timeout"] <= high:
        problems.append(f"backup_wal_timeout must be between {low} and {high} seconds (how long a commit may wait "
                        f"before its WAL segment is archived), got {merged['backup_wal_timeout']!r}")
    if not CHECK_SUBSET_RE.fullmatch(merged["backup_offsite_check_subset"]):
        problems.append(
            f"backup_offsite_check_subset must be a share of the data ('10%', '1/5') or a size ('500M'), "
            f"got {merged['backup_offsite_check_subset']!r}"
        )
    return problems


def utc_time(text: str) -> datetime | None:
    """A point in time as the settings write it (UTC, "2026-03-01T14:05:00Z"), or None."""
    if not UTC_TIME_RE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def check_recovery(merged: dict) -> list[str]:
    """The one-shot settings of drill.py and restore.py (their presence is checked there)."""
    problems = []
    for key in ("drill_time", "restore_time"):
        if key == "restore_time" and merged[key] == "latest":
            pass
        elif merged[key] and utc_time(merged[key]) is None:
            problems.append(f"{key} must be a UTC time such as 2026-03-01T14:05:00Z"
                            + (" (or latest)" if key == "restore_time" else "") + f", got {merged[key]!r}")
        elif merged[key] and not merged["backup_wal_archive"]:
            problems.append(f"{key} needs the WAL archive (backup_wal_archive = True): without it only the "
                            "backups themselves can be restored")
    if merged["drill_time"] and merged["drill_backup"]:
        problems.append("drill_time and drill_backup are exclusive: drill a backup, or a point in time")
    if merged["restore_time"] and merged["restore_backup"]:
        problems.append("restore_time and restore_backup are exclusive: restore a backup, or a point in time")
    for key in ("drill_backup", "restore_backup"):
        if merged[key] and not BACKUP_NAME_RE.fullmatch(merged[key]):
            problems.append(f"{key} must name a backup (srq-hpn-<UTC time>[-label], see the Backups fact), "
                            f"got {merged[key]!r}")
    if merged["restore_from"] not in DRILL_SOURCES:
        problems.append(f"restore_from must be one of {', '.join(DRILL_SOURCES)}, got {merged['restore_from']!r}")
    elif merged["restore_from"] == "offsite" and not merged["restore_time"]:
        problems.append("restore_from = 'offsite' goes with restore_time (a point in time from the off-server copy "
                        "of the WAL archive); a backup is restored from this server")
    elif merged["restore_from"] == "offsite" and not merged["backup_offsite_repository"]:
        problems.append("restore_from = 'offsite' needs backup_offsite_repository (the off-server copy is off)")
    if merged["drill_from"] not in DRILL_SOURCES:
        problems.append(f"drill_from must be one of {', '.join(DRILL_SOURCES)}, got {merged['drill_from']!r}")
    elif merged["drill_from"] == "offsite" and not merged["backup_offsite_repository"]:
        problems.append("drill_from = 'offsite' needs backup_offsite_repository (the off-server copy is off)")
    return problems


def restore_problems(merged: dict) -> list[str]:
    """What restore.py needs besides valid settings: the backup and the confirmation."""
    problems = []
    if not merged["restore_backup"] and not merged["restore_time"]:
        problems.append("restore_backup is required: the backup to restore, e.g. --data restore_backup="
                        "srq-hpn-20260101T020000Z, or a point in time, e.g. --data restore_time=2026-01-01T14:05:00Z "
                        "(pyinfra inventory.py fact tasks.facts.Backups lists them, and the recoverable window)")
    confirm = merged["restore_confirm"]
    accepted = (merged["srq_hpn_domain"], merged["postgres_db"])
    if confirm not in accepted or not confirm:
        given = f" (got {confirm!r})" if confirm else ""
        problems.append(
            f"restore_confirm must be the domain ({accepted[0]}) or the database's name ({accepted[1]}){given}: "
            "a restore replaces the live database. Nothing was changed; add --data restore_confirm="
            f"{accepted[0]} to go ahead"
        )
    return problems
