"""The restore drill and the restore, step by step (drill.py and restore.py read as
these steps). Both work on the server's own backups; the restore takes the deploy
lock and leaves an audit line, as a deploy does."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks import stack
from tasks.operations.database import app_role, migrated
from tasks.operations.recovery import drilled, maintenance_page, restored, restored_to_time
from tasks.plan import Plan
from tasks.settings import Settings


@deploy("Drill a restore of a backup")
def drill(settings: Settings):
    if settings.drill_time:
        drilled(
            name=f"Ensure the database as it was at {settings.drill_time} ({settings.drill_from} WAL archive) "
                 "recovers into a scratch database, stopping at that time",
            backup="",
            source=settings.drill_from,
            when=settings.drill_time,
        )
        return
    which = settings.drill_backup or "the newest backup"
    drilled(
        name=f"Ensure {which} ({settings.drill_from}) restores into a scratch database and matches its manifest",
        backup=settings.drill_backup,
        source=settings.drill_from,
    )


@deploy("Restore the database from a backup")
def replace_database(settings: Settings, backup: str | None = None, plan: Plan | None = None):
    if settings.restore_time and not backup:
        restored_to_time(
            name=f"Ensure the database holds what it held at {settings.restore_time} (recovered from the "
                 f"{settings.restore_from} WAL archive, written as a backup; safety backup first; Caddy answers "
                 "a maintenance page while the app is stopped)",
            when=settings.restore_time,
            revision=plan.migration_before if plan else [],
            source=settings.restore_from,
        )
        return
    backup = backup or settings.restore_backup
    restored(
        name=f"Ensure the database holds backup {backup} (safety backup first; Caddy answers "
             "a maintenance page while the app is stopped)",
        backup=backup,
        backup_dir=settings.backups_dir,
    )


@deploy("Bring the app back on the restored database")
def bring_back(settings: Settings, plan: Plan):
    app_role(name=f"Ensure the limited role {settings.postgres_app_user} has its grants and current password",
             plan=plan)
    migrated(
        name="Ensure the restored schema is at the release's newest migration"
             + (f" ({plan.migration.words()})" if plan.migrates else ""),
        paths=settings.paths,
        plan=plan,
    )
    stack.brought_up(settings, plan)
    maintenance_page(name="Ensure the maintenance page is off", on=False)
    stack.checked_through_caddy(settings, plan)
