"""The migration rehearsal: before a deploy migrates a database that holds data, the
release's ``alembic upgrade head`` runs first on a copy of production (the backup taken
before the migration, restored into a scratch database container on the server, on an
internal network of its own with only the one-off migration container; removed after).
If it fails there, nothing is migrated and nothing restarted. Pure code (unit-tested):
what to rehearse, the server program's command, and how its record reads.

The server program is templates/server/srq-hpn-migrate: it rehearses, migrates production,
and records the result in ``Paths.migration_record`` (read by the checklist).
"""

from __future__ import annotations

from dataclasses import replace

from tasks.commands import program
from tasks.plan import Migration

# Why a migration is not rehearsed on a copy of production first.
NOT_NEEDED = "an empty database: nothing to rehearse on"
OFF = "srq_hpn_migration_rehearsal is off"
# A restore's or a rollback's migration (it brings a restored backup to the release's heads).
NOT_A_DEPLOY = "the migration of a restored backup"


def rehearsal_of(migration: Migration, enabled: bool) -> Migration:
    """The deploy's migration with its rehearsal decided: on a copy of production first
    when the database holds data and ``srq_hpn_migration_rehearsal`` is on. A release
    without a migration is left as it is: it pays nothing."""
    if not migration.pending:
        return migration
    if not migration.has_data:
        return replace(migration, rehearsed=False, unrehearsed_why=NOT_NEEDED)
    if not enabled:
        return replace(migration, rehearsed=False, unrehearsed_why=OFF)
    return replace(migration, rehearsed=True, unrehearsed_why="")


def revisions_word(revisions) -> str:
    """Revisions as srq-hpn-migrate takes them: comma-separated; "none" for none, "unknown"
    when they cannot be told before alembic runs."""
    if revisions is None:
        return "unknown"
    return ",".join(revisions) or "none"


def migrate_command(migration: Migration) -> str:
    """srq-hpn-migrate's command line for ``migration``: rehearsed on the backup labelled
    after it (the newest verified backup if that one is missing), or not, saying why (with
    no data, nothing to rehearse on: the program's own words, NOT_NEEDED)."""
    args = ["--from", revisions_word(migration.current), "--to", revisions_word(migration.heads)]
    if migration.rehearsed:
        args += ["--rehearse", migration.label]
    elif not migration.has_data:
        args += ["--no-data"]
    else:
        args += ["--unrehearsed", migration.unrehearsed_why or NOT_A_DEPLOY]
    return program("srq-hpn-migrate", *args)
