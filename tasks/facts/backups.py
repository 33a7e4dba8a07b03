"""Facts about the backups, the off-server copy and the restore drills (the backup
programs' own records: names, sizes, revisions, row counts; never a secret)."""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timezone

from pyinfra.api import FactBase

from tasks import layout
from tasks.backup_settings import DEFAULT_BACKUP_MAX_AGE_HOURS
from tasks.commands import configured, json_lines, parse_status, quote, status_block

def _hours(seconds: float) -> float:
    return round(seconds / 3600, 1)


class Backups(FactBase):
    """
    Returns the server's backups, oldest first, with the newest one's age, and whether
    that is older than ``stale_hours`` (by default the server's limit for its backup
    schedule: the longest gap between two runs, plus 2 hours; 26 for daily)::

        {"dir": "/var/backups/srq-hpn", "count": 2, "newest": "srq-hpn-20260301T020000Z",
         "newest_age_hours": 3.2, "stale": False,
         "backups": [{"name": "srq-hpn-20260301T020000Z", "label": "", "time": "2026-03-01T02:00:00Z",
                      "age_hours": 3.2, "bytes": 81234, "revision": ["0002"], "rows": 1234,
                      "tables": {"public.events": 1200, ...}, "verified": True}],
         "point_in_time": [{"system_identifier": "7441...", "earliest": "2026-02-22T02:00:31Z",
                            "latest": "2026-03-01T05:11:40Z", "base_backups": 7, "segments": 412,
                            "recoverable": True}]}

    ``verified``: pg_restore read it back when it was written, and its files still
    have the sizes its manifest records (the drill checks every byte).
    ``point_in_time``: the WAL archive's recoverable window of each database cluster (the
    live one archived most recently, so first): restore.py and drill.py take any time in it.
    """

    @staticmethod
    def default():
        return {"dir": None, "count": 0, "newest": None, "newest_age_hours": None, "stale": True, "backups": [],
                "point_in_time": []}

    def command(self, backup_dir=None, stale_hours=None, wal_dir=None):
        return (
            f"dir={configured('BACKUP_DIR', layout.BACKUP_DIR, backup_dir)}; "
            f"echo \"stale_hours {configured('BACKUP_MAX_AGE_HOURS', str(DEFAULT_BACKUP_MAX_AGE_HOURS), stale_hours)}\"; "
            'echo "now $(date -u +%s)"; echo "dir $dir"; '
            'for m in "$dir"/srq-hpn-*/manifest.json; do [ -f "$m" ] || continue; b=${m%/manifest.json}; '
            'sizes=$(for f in "$b"/*; do [ "${f##*/}" = manifest.json ] || printf \'%s=%s,\' "${f##*/}" "$(stat -c %s "$f")"; done); '
            'printf \'backup %s %s %s\\n\' "${b##*/}" "${sizes:-none}" "$(tr -d \'\\n\' < "$m")"; done; '
            f"wal={configured('WAL_DIR', layout.WAL_DIR, wal_dir)}; "
            'for c in "$wal"/*/; do c=${c%/}; [ -d "$c/wal" ] || [ -d "$c/base" ] || continue; '
            'n=$(find "$c/wal" -maxdepth 1 -name \'*.gz\' -printf \'%T@\\n\' 2>/dev/null | sort -n | tail -n 1); '
            'printf \'cluster %s %s %s\\n\' "${c##*/}" "${n%.*}" "$(find "$c/wal" -maxdepth 1 -name \'*.gz\' 2>/dev/null | wc -l)"; '
            'for m in "$c"/base/*/manifest.json; do if [ -f "$m" ]; then printf \'base %s %s\\n\' "${c##*/}" "$(tr -d \'\\n\' < "$m")"; fi; done; '
            'done'
        )

    def process(self, output):
        now, stale_hours, result = None, DEFAULT_BACKUP_MAX_AGE_HOURS, self.default()
        clusters: dict = {}
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "now" and rest.strip().isdigit():
                now = int(rest)
            elif kind == "stale_hours" and rest.strip().isdigit():
                stale_hours = int(rest)
            elif kind == "dir":
                result["dir"] = rest.strip()
            elif kind == "cluster":
                parts = rest.split()
                if len(parts) == 3 and parts[1].isdigit():
                    clusters.setdefault(parts[0], {"bases": []}).update(newest=int(parts[1]), segments=int(parts[2]))
                elif parts:
                    clusters.setdefault(parts[0], {"bases": []}).update(newest=None, segments=0)
            elif kind == "base":
                cluster, _, manifest_text = rest.partition(" ")
                try:
                    clusters.setdefault(cluster, {"bases": []})["bases"].append(json.loads(manifest_text))
                except ValueError:
                    pass
            elif kind == "backup":
                name, _, rest = rest.partition(" ")
                sizes_text, _, manifest_text = rest.partition(" ")
                result["backups"].append(_backup(name, sizes_text, manifest_text, now))
        result["point_in_time"] = recoverable_windows(clusters)
        backups = sorted(result["backups"], key=lambda b: b["name"])
        result["backups"], result["count"] = backups, len(backups)
        if backups:
            newest = backups[-1]
            result["newest"], result["newest_age_hours"] = newest["name"], newest["age_hours"]
            result["stale"] = newest["age_hours"] is None or newest["age_hours"] > stale_hours
        return result


def recoverable_windows(clusters: dict) -> list[dict]:
    """The recoverable window of each cluster's WAL archive, the one archived most recently
    first: from the end of its oldest base backup to when its newest segment was archived
    (or that end, when later: right after the first base backup the window is one point)
    (pure; unit-tested)."""
    windows = []
    for cluster, info in clusters.items():
        ends = sorted(base.get("end_time") for base in info.get("bases", []) if base.get("end_time"))
        newest = info.get("newest")
        latest = datetime.fromtimestamp(newest, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if newest else None
        if latest and ends and ends[0] > latest:  # one point: the base backup's end, until more is archived
            latest = ends[0]
        windows.append({"system_identifier": cluster, "earliest": ends[0] if ends else None, "latest": latest,
                        "base_backups": len(ends), "segments": info.get("segments", 0),
                        "recoverable": bool(ends and latest and ends[0] <= latest)})
    return sorted(windows, key=lambda w: w["latest"] or "", reverse=True)


def _backup(name: str, sizes_text: str, manifest_text: str, now: int | None) -> dict:
    try:
        manifest = json.loads(manifest_text)
    except ValueError:
        manifest = {}
    sizes = dict(item.split("=", 1) for item in sizes_text.split(",") if "=" in item)
    files = manifest.get("files") or {}
    complete = bool(files) and all(str(info.get("bytes")) == sizes.get(file) for file, info in files.items())
    age = None
    epoch = _epoch(manifest.get("time"))
    if now is not None and epoch is not None:
        age = _hours(now - epoch)
    tables = manifest.get("tables") or {}
    return {
        "name": name,
        "label": manifest.get("label", ""),
        "time": manifest.get("time"),
        "age_hours": age,
        "bytes": sum(int(size) for size in sizes.values() if size.isdigit()),
        "revision": manifest.get("alembic_revision", []),
        "rows": sum(tables.values()) if all(isinstance(v, int) for v in tables.values()) else None,
        "tables": tables,
        "verified": bool(manifest.get("verified")) and complete,
    }


def _epoch(text) -> int | None:
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
    except (TypeError, ValueError):
        return None


class LastDrill(FactBase):
    """
    Returns the last restore drill's result and its age, or None if none ran::

        {"time": "2026-03-01T09:00:00Z", "age_hours": 2.5, "backup": "srq-hpn-20260301T020000Z",
         "from": "local", "result": "passed", "duration_s": 9.8, "cause": None,
         "checks": [{"check": "rows of public.events", "expected": "1200", "found": "1200", "ok": True}]}
    """

    def command(self, state_dir=None):
        return (f"d={configured('STATE_DIR', layout.STATE_DIR, state_dir)}; "
                'echo "now $(date -u +%s)"; cat "$d/drills/last.json" 2>/dev/null | tr -d \'\\n\'; echo')

    def process(self, output):
        lines = list(output)
        now = int(lines[0].split()[1]) if lines and lines[0].startswith("now ") else None
        try:
            record = json.loads("".join(lines[1:]))
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        epoch = _epoch(record.get("time"))
        record["age_hours"] = _hours(now - epoch) if now is not None and epoch is not None else None
        return record


class CalendarCheck(FactBase):
    """
    Returns whether systemd accepts a calendar value (``OnCalendar=``), with its own
    words when it does not, and its next runs::

        {"ok": True, "next": "Sat 2026-03-07 00:00:00 UTC",
         "elapses": ["Sat 2026-03-07 00:00:00 UTC", "Sun 2026-03-08 00:00:00 UTC", ...]}
    """

    ITERATIONS = 6

    @staticmethod
    def default():
        return {"ok": True, "next": None, "elapses": []}

    def command(self, spec):
        return ("if ! command -v systemd-analyze >/dev/null; then echo ok; else "
                + status_block(f"systemd-analyze calendar --iterations={self.ITERATIONS} -- {shlex.quote(spec)}")
                + "; fi")

    def process(self, output):
        ok, lines = parse_status(output)
        if ok:
            upcoming = [line.split(":", 1)[1].strip() for line in lines
                        if line.strip().startswith(("Next elapse:", "Iter. #", "Iteration #"))]
            return {"ok": True, "next": upcoming[0] if upcoming else None, "elapses": upcoming}
        return {"ok": False, "error": [line for line in lines if line.strip()][-3:]}


class OffsitePassword(FactBase):
    """Returns whether the server holds the off-server copy's repository password (never
    the password itself): True or False."""

    def command(self):
        path = shlex.quote(layout.OFFSITE_PASSWORD_FILE)
        return f"if [ -s {path} ]; then echo present; else echo absent; fi"

    def process(self, output):
        return bool(output) and output[0].strip() == "present"


class WalArchive(FactBase):
    """
    Returns the state of the database's WAL archive that the deploy acts on: whether the
    live database archives (its ``archive_mode``), whether the archive directory is its
    postgres user's, its cluster's system identifier and how many base backups of that
    cluster the archive holds::

        {"archive_mode": "on", "owned": True, "system_identifier": "7441...", "base_backups": 1}

    Each is None when it cannot be told (no database container running).
    """

    requires_command = "docker"

    def command(self, container, user, database, wal_dir):
        c, d = quote(container), quote(wal_dir)
        return (
            f"if [ \"$(docker inspect --format '{{{{.State.Running}}}}' {c} 2>/dev/null)\" != true ]; then "
            "echo running no; exit 0; fi; echo running yes; "
            f"echo \"mode $(docker exec {c} psql -X -qAt -U {quote(user)} -d {quote(database)} -c 'SHOW archive_mode' "
            "2>/dev/null)\"; "
            f"id=$(docker exec {c} psql -X -qAt -U {quote(user)} -d {quote(database)} "
            "-c 'SELECT system_identifier FROM pg_control_system()' 2>/dev/null); echo \"id $id\"; "
            f"echo \"owner $(stat -c %u {d} 2>/dev/null) $(docker exec {c} id -u postgres 2>/dev/null)\"; "
            f"n=0; for m in {d}/\"$id\"/base/*/manifest.json; do if [ -n \"$id\" ] && [ -f \"$m\" ]; then n=$((n+1)); "
            "fi; done; echo \"bases $n\""
        )

    def process(self, output):
        found = {"archive_mode": None, "owned": None, "system_identifier": None, "base_backups": None}
        for line in output:
            kind, _, value = line.strip().partition(" ")
            value = value.strip()
            if kind == "mode" and value:
                found["archive_mode"] = value
            elif kind == "id" and value.isdigit():
                found["system_identifier"] = value
            elif kind == "owner":
                parts = value.split()
                found["owned"] = len(parts) == 2 and parts[0] == parts[1]
            elif kind == "bases" and value.isdigit() and found["system_identifier"]:
                found["base_backups"] = int(value)
        return found


class MigrationHistory(FactBase):
    """
    Returns the migration records of the server (srq-hpn-migrate's history), oldest first::

        [{"time": "2026-03-01T02:00:00Z", "from": "0002", "to": "0003", "result": "migrated",
          "duration_s": 1.2, ...}]
    """

    default = list

    def command(self, state_dir=None):
        return (f"d={configured('STATE_DIR', layout.STATE_DIR, state_dir)}; "
                'cat "$d/migrations/history.jsonl" 2>/dev/null || true')

    def process(self, output):
        return json_lines(output)
