"""Operations on the database service: its data volume, its start, the app role,
and migrations."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import StringCommand, operation

from tasks import facts, layout
from tasks.commands import compose, program
from tasks.operations.plan import later
from tasks.plan import Plan
from tasks.rehearsal import migrate_command
from tasks.remote import QuietFact, ask_quietly, executing, fail, shown


@operation()
def data_volume_kept(paths: layout.Paths, plan: Plan):
    """
    Ensure the database will start on the volume that holds this stack's data: refuse
    when the release's compose configuration names a new, empty volume while a volume of
    this stack with data exists (a renamed project or volume would orphan the data).

    + paths: the server's app and state directories
    + plan: this run's plan (tasks.plan.Plan): the database's volume
    """
    wanted = plan.db_volume
    if not plan.known:
        host.noop("a first deploy: no data of this stack on the server")
        return
    if wanted is None:
        host.noop("the database's data is not on a named volume")
        return
    if host.get_fact(facts.DataVolumes, names=(wanted,)).get(wanted, {}).get("exists"):
        host.noop(f"the database's volume {wanted} exists")
        return
    known = [layout.PREVIOUS_DB_VOLUME]
    recorded = host.get_fact(facts.TextFile, path=paths.db_volume_record)
    if recorded:
        known.append(recorded)
    for target, name in host.get_fact(facts.ContainerVolumes, container=plan.container(layout.DB)).items():
        if target.startswith(layout.PGDATA_PREFIX):
            known.append(name)
    volumes = host.get_fact(facts.DataVolumes, names=tuple(dict.fromkeys([wanted, *known])))
    holding = [name for name in known if name != wanted and volumes.get(name, {}).get("data")]
    if holding:
        yield from fail(
            f"Refusing to start the database on a new, empty volume {wanted} while {holding[0]} holds this "
            "stack's data.\n"
            "hint: the compose project's name or the db volume's key changed in the app's compose file; "
            f"keep them so that the volume stays {holding[0]} (e.g. `name:` at the top of the compose file), "
            "or move the data first (back it up, restore it into the new volume)."
        )
        return
    host.noop(f"the database's volume {wanted} will be created (no data of this stack elsewhere)")


class Ready(QuietFact):
    """Returns (True, []) when the server program's wait passes at once, else (False, its lines)."""

    def command(self, command):
        return f'out=$({command} 2>&1) && echo ready || {{ echo not-ready; printf "%s\\n" "$out"; }}'

    def process(self, output):
        lines = list(output)
        return (bool(lines) and lines[0] == "ready"), lines[1:]


@operation()
def db_ready(paths: layout.Paths, plan: Plan, timeout: int):
    """
    Ensure the db service runs its current configuration and accepts connections,
    started alone and first, as the guide does.

    + paths: the server's app and state directories
    + plan: this run's plan (tasks.plan.Plan): whether (and why) the database starts
    + timeout: seconds to wait before failing with its last log lines
    """
    if plan.awaits_fetch:
        yield from later("the database's start once the release is fetched")
        return
    wait = program("srq-hpn-wait", str(timeout), layout.DB)
    if plan.db_start:
        host.log(f"Starting db ({plan.db_start})")
        yield StringCommand(compose(paths.app_dir, "up", "-d", layout.DB))
        yield StringCommand(wait)
        return
    if plan.db_healthy or not executing():
        host.noop("db runs its current configuration" + (" and is healthy" if plan.db_healthy else ""))
        return
    # Running its current configuration, health not (yet) known: only a check (after a
    # Docker restart, say, Docker's own healthcheck starts over).
    ready, output = ask_quietly(Ready, command=wait)
    if not ready:
        yield from fail("\n".join(output))
        return
    host.noop("db runs its current configuration and accepts connections")


@operation()
def app_role(plan: Plan):
    """
    Ensure the limited app role exists with exactly its grants and current password (and
    the superuser its current password).

    + plan: this run's plan (tasks.plan.Plan): why the role is made sure (it drifted, a
      password rotates, the database is new or starts), or nothing to do

    Covers a data volume that existed before (the postgres image then skips the
    repository's db/init scripts) and a repository that ships no such script.
    """
    if plan.awaits_fetch:
        yield from later("the app role once the release is fetched")
        return
    if not plan.app_role:
        host.noop("the app role and its grants are as wanted")
        return
    host.log("App role: " + "; ".join(plan.app_role))
    yield StringCommand(program("srq-hpn-app-role", "apply"))


@operation()
def migrated(paths: layout.Paths, plan: Plan):
    """
    Ensure the database schema is at the newest migration of the release, with the
    superuser, in a one-off container of the migration service (the guide's
    ``run --rm api alembic upgrade head``), before api and web are replaced; when the plan
    says so, rehearsed first on a copy of production (the backup before the migration,
    restored into a scratch database on the server: tasks.rehearsal).

    + paths: the server's app and state directories
    + plan: this run's plan (tasks.plan.Plan): the database's revision and the release's
      heads (read from its migration scripts), so whether alembic runs and from what, and
      whether it is rehearsed first (the backup before it is taken with the release's
      images: tasks.operations.release)

    On failure, on the copy or on production, the deploy stops with alembic's own last
    lines (and, on the copy, the rows of its tables); the running version keeps serving.
    The server records the result for the checklist.
    """
    if plan.awaits_fetch:
        yield from later("the migration once the release is fetched")
        return
    migration = plan.migration
    if migration is None or not migration.pending:
        host.noop(f"the schema is at the release's newest migration ({', '.join(plan.migration_after) or 'none'})")
        return
    if not migration.has_data:
        host.log("Migrating an empty database (nothing to back up first)")
    else:
        before = ", ".join(migration.current) if migration.current is not None else "the database"
        after = ", ".join(migration.heads) if migration.heads is not None else "the release's heads"
        host.log(f"Migrating {before} -> {after}" + (", on a copy of production first" if migration.rehearsed else ""))
    yield from shown(migrate_command(migration), explain=True)
