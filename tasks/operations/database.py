"""Operations on the database service: its data volume, its start, the app role,
and migrations."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import StringCommand, operation

from tasks import appspec, facts, layout
from tasks.appspec import container_names
from tasks.commands import compose, program, quote
from tasks.remote import QuietFact, ask_quietly, executing, fail
from tasks.operations.services import stale_services
from tasks.runtime import learnt


@operation()
def data_volume_kept(paths: layout.Paths):
    """
    Ensure the database will start on the volume that holds this stack's data: refuse
    when the app's compose configuration names a new, empty volume while a volume of
    this stack with data exists (a renamed project or volume would orphan the data).

    + paths: the server's app and state directories
    """
    if not executing():
        host.noop("the data volume is checked when the deploy runs")
        return
    config = learnt().config or {}
    wanted = appspec.db_volume(config)
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
    db_container = appspec.container_names(config)[layout.DB]
    for target, name in host.get_fact(facts.ContainerVolumes, container=db_container).items():
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
def db_ready(paths: layout.Paths, timeout: int):
    """
    Ensure the db service runs its current configuration and accepts connections,
    started alone and first, as the guide does.

    + paths: the server's app and state directories
    + timeout: seconds to wait before failing with its last log lines
    """
    if not executing():
        host.noop("the database is started when the deploy runs")
        return
    project = (learnt().config or {}).get("name") or "srq-hpn"
    info = host.get_fact(facts.StackContainers, app_dir=paths.app_dir, project=project).get(layout.DB, {})
    wait = program("srq-hpn-wait", str(timeout), layout.DB)
    why = stale_services({layout.DB: info}, [layout.DB]).get(layout.DB)
    if why:
        host.log(f"Starting db ({why})")
        yield StringCommand(compose(paths.app_dir, "up", "-d", layout.DB))
        yield StringCommand(wait)
        return
    if info.get("health") == "healthy":
        host.noop("db runs its current configuration and is healthy")
        return
    # Running its current configuration, health not (yet) known: only a check (after a
    # Docker restart, say, Docker's own healthcheck starts over).
    ready, output = ask_quietly(Ready, command=wait)
    if not ready:
        yield from fail("\n".join(output))
        return
    host.noop("db runs its current configuration and accepts connections")


@operation()
def app_role():
    """
    Ensure the limited app role exists with exactly its grants and current password.

    Covers a data volume that existed before (the postgres image then skips the
    repository's db/init scripts) and a repository that ships no such script.
    """
    if not executing():
        host.noop("the app role is checked when the deploy runs")
        return
    drift = host.get_fact(facts.AppRoleDrift)
    if not drift:
        host.noop("the app role and its grants are as wanted")
        return
    host.log("App role differs: " + "; ".join(drift))
    yield StringCommand(program("srq-hpn-app-role", "apply"))


def schema_state(record: dict | None, database: dict | None, running: dict | None = None,
                 migrations: str | None = None) -> str:
    """What the live database says, before any container runs alembic (pure; unit-tested):
    "current" (at the heads recorded for this release, or for the running release when
    this one ships the very same migration scripts), "empty" (no table at all), or "ask"
    (alembic must tell: new migrations, or a schema not as recorded)."""
    if database is None:
        return "ask"
    if not database["revisions"] and database["tables"] == 0:
        return "empty"
    if record is None and running and migrations and running.get("migrations") == migrations:
        record = running
    heads = sorted((record or {}).get("migration_heads") or [])
    if heads and sorted(database["revisions"]) == heads:
        return "current"
    return "ask"


@operation()
def migrated(paths: layout.Paths, before_migrating=None, user: str = "srq_hpn", database: str = "srq_hpn"):
    """
    Ensure the database schema is at the newest migration of the release, with the
    superuser, in a one-off container of the migration service (the guide's
    ``run --rm api alembic upgrade head``), before api and web are replaced.

    + paths: the server's app and state directories
    + before_migrating: a function (current, heads) -> commands, run first when a
      migration is pending on a database that holds data (the pre-migration backup)
    + user/database: the superuser and database, to read ``alembic_version`` directly

    A release already recorded at the database's revision needs no container to say
    so; a database without any table is migrated without asking. On failure the deploy
    stops with alembic's own last lines; the running version keeps serving.
    """
    if not executing():
        host.noop("migrations are checked when the deploy runs")
        return
    state = learnt()
    db_container = container_names(state.config)[layout.DB] if state.config else layout.CONTAINERS[layout.DB]
    live = host.get_fact(facts.DatabaseRevision, container=db_container, user=user, database=database)
    releases = host.get_fact(facts.Releases, state_dir=paths.state_dir)
    record = next((r for r in releases["releases"] if r["release"] == state.release), None)
    running = next((r for r in releases["releases"] if r["release"] == releases["current"]), None)
    upgrade = StringCommand(
        compose(paths.app_dir, "run", "--rm", "--no-deps", "-T", layout.MIGRATE_SERVICE, "alembic", "upgrade", "head")
        + f" || {{ echo {quote(MIGRATION_HINT)} >&2; exit 1; }}"
    )
    situation = schema_state(record, live, running, state.migrations)
    if situation == "current":
        state.migration_before = state.migration_after = live["revisions"]
        if record is None:
            host.log("The release ships the running release's migration scripts: nothing to migrate")
        host.noop(f"the schema is at the release's newest migration ({', '.join(live['revisions'])})")
        return
    if situation == "empty":
        host.log("Migrating an empty database (nothing to back up first)")
        yield upgrade
        after = host.get_fact(facts.DatabaseRevision, container=db_container, user=user, database=database)
        state.migration_after = after["revisions"] if after else []
        return
    ask = host.get_fact(facts.MigrationState, app_dir=paths.app_dir)
    if not ask["ok"]:
        yield from fail("\n".join(
            [f"Could not read the migration state (alembic current/heads in a one-off {layout.MIGRATE_SERVICE} "
             "container); its own last lines:"]
            + [f"  | {line}" for line in ask["error"]]
            + ["hint: the release's image must run alembic with the superuser's URL; try on the server: "
               f"cd {paths.app_dir} && docker compose --env-file .env.production run --rm "
               f"{layout.MIGRATE_SERVICE} alembic current"]
        ))
        return
    state.migration_before = state.migration_after = ask["current"]
    if ask["at_head"]:
        host.noop(f"the schema is at the newest migration ({', '.join(ask['heads'])})")
        state.migration_after = ask["heads"]
        return
    host.log(f"Migrating {', '.join(ask['current']) or '(empty)'} -> {', '.join(ask['heads'])}")
    if before_migrating is not None:
        yield from before_migrating(ask["current"], ask["heads"])
    yield upgrade
    state.migration_after = ask["heads"]


MIGRATION_HINT = ("hint: the lines above are alembic's; nothing was restarted and the running version keeps serving. "
                  "Fix the migration and deploy again.")
