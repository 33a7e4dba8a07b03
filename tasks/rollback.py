"""Rollback: which release to go back to, and whether the database allows it.

A rollback switches the services the app builds to a release kept on the server
(its images are still there), without a rebuild, swapped without downtime like an
update. It refuses when the database was migrated past what that release knows:
running old code on a newer schema is not a rollback.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError

from tasks import facts
from tasks.preflight import Deployment


class RollbackError(PyinfraError):
    """The rollback cannot go ahead; the message says why and what to do."""


def target_release(releases: dict, wanted: str | None) -> tuple[dict | None, str | None]:
    """(the release record to go back to, or None with the reason) (pure; unit-tested)."""
    records = {record["release"]: record for record in releases["releases"]}
    current = releases["current"]
    kept = ", ".join(sorted(records)) or "none"
    if wanted:
        matches = [name for name in records if name.startswith(wanted)]
        if len(matches) != 1:
            return None, f"no release {wanted!r} on the server (kept: {kept})"
        target = records[matches[0]]
    else:
        earlier = [name for name in reversed(releases["history"]) if name != current and name in records]
        if not earlier:
            return None, f"no earlier release to go back to (current: {current}; kept: {kept})"
        target = records[earlier[0]]
    if target["release"] == current:
        return None, f"release {current} is already the one running"
    if not target.get("images_present"):
        return None, (f"the images of release {target['release']} are gone (only the newest releases keep them: "
                      "srq_hpn_releases_kept)")
    return target, None


def backup_at(target: dict, backups: list[dict]) -> dict | None:
    """The newest verified backup taken at the target release's schema: the one taken
    right before the migration that left it behind (pure; unit-tested)."""
    heads = sorted(target.get("migration_heads") or [])
    fitting = [b for b in backups if b.get("verified") and sorted(b.get("revision") or []) == heads and heads]
    return max(fitting, key=lambda b: b.get("time", ""), default=None)


def migration_problem(target: dict, database: list[str] | None) -> str | None:
    """Why the database's schema does not fit the target release, or None (pure; unit-tested)."""
    heads = sorted(target.get("migration_heads") or [])
    if database is None:
        return "the database does not answer, so its schema cannot be compared with the release's"
    if sorted(database) != heads:
        return (f"release {target['release']} knows migrations up to {', '.join(heads) or '(none)'}, but the "
                f"database is at {', '.join(database) or '(no alembic_version)'}: it was migrated since, and that "
                "release's code would run on a schema it does not know")
    return None


@deploy("Choose the release to go back to")
def choose(deployment: Deployment) -> tuple[dict, dict | None]:
    """The release to go back to (its record), and the backup to restore first (None: the
    schema fits)."""
    settings = deployment.settings
    target, why = target_release(host.get_fact(facts.Releases, state_dir=settings.paths.state_dir),
                                 settings.rollback_to or None)
    if target is None:
        raise RollbackError(f"rollback refused on {host.name}: {why}; nothing was changed")
    database = host.get_fact(facts.DatabaseRevision, user=settings.postgres_user, database=settings.postgres_db)
    why = migration_problem(target, database["revisions"] if database else None)
    backup = None
    if why and not settings.rollback_restore_backup:
        raise RollbackError(
            f"rollback refused on {host.name}: {why}; nothing was changed.\n"
            "hint: roll forward instead (fix and deploy), or go back with the data as it was before that migration: "
            f"add --data rollback_restore_backup=true --data restore_confirm={settings.domain} (the newest backup "
            "taken at that release's schema replaces the database, after a safety backup)"
        )
    if why:
        backup = backup_at(target, host.get_fact(facts.Backups, backup_dir=settings.backups_dir)["backups"])
        if backup is None:
            raise RollbackError(f"rollback refused on {host.name}: {why}, and no verified backup at that schema "
                                "is on this server; nothing was changed")
        if settings.restore_confirm not in (settings.domain, settings.postgres_db):
            raise RollbackError(
                f"rollback refused on {host.name}: it would replace the database with backup {backup['name']} "
                f"(taken {backup.get('time', '?')}); nothing was changed. Add --data restore_confirm={settings.domain} "
                "to go ahead"
            )
        host.log(f"The database goes back to backup {backup['name']} (taken {backup.get('time', '?')}), "
                 "after a safety backup of its current state")
    host.log(f"Rolling back to release {target['release']} (source {target.get('source_revision', '?')[:12]}, "
             f"created {target.get('created', '?')})")
    return target, backup
