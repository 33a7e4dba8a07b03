"""Step 3: the plan, made before anything changes (tasks.resolve reads what it needs; tasks.plan
is the value), said at the default verbosity; on a first deploy, the rest of it once the
run has installed what it needs (step 7)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from tasks import facts, resolve
from tasks.backup_settings import utc_time
from tasks.operations.plan import settled
from tasks.pitr import revision_at
from tasks.plan import Plan
from tasks.preflight import Deployment, PreflightError
from tasks.secrets import EnvSources
from tasks.settings import Settings


def make(deployment: Deployment, sources: EnvSources) -> Plan:
    """This host's plan, said line by line (a release that cannot be deployed stops here,
    before any change)."""
    try:
        plan = resolve.resolve(deployment, sources)
    except resolve.PlanError as error:
        raise PreflightError(str(error)) from None
    if deployment.upload is None and plan.env is not None:  # an upload's are said by the preflight
        host.log(EnvSources.origins(plan.env))
    for line in plan.steps():
        host.log(f"Plan: {line}")
    return plan


@deploy("Complete the plan")
def settle(deployment: Deployment, sources: EnvSources, plan: Plan):
    settled(
        name="Ensure the plan is whole (on a first deploy: resolved once Docker runs and the release is in place)",
        plan=plan,
        resolve=lambda: resolve.resolve(deployment, sources),
    )


def for_stack(settings: Settings, record: dict, backup: dict | None = None) -> Plan:
    """The plan of a rollback to ``record`` (after restoring ``backup``, if any), or of a
    restore, on the stack the server runs; said line by line."""
    try:
        plan = resolve.for_stack(settings, record, (backup.get("revision") or []) if backup else None)
    except resolve.PlanError as error:
        raise PreflightError(str(error)) from None
    for line in plan.steps():
        host.log(f"Plan: {line}")
    return plan


def for_restore(settings: Settings) -> Plan:
    """The plan of a restore of ``restore_backup``: the running release, started again on
    the restored database (migrated when the backup is behind it)."""
    releases = host.get_fact(facts.Releases, state_dir=settings.paths.state_dir)
    record = next((r for r in releases["releases"] if r["release"] == releases["current"]), None)
    if record is None:
        raise PreflightError(f"restore refused for {host.name}: no release runs on this server (deploy it first); "
                             "nothing was changed")
    found = host.get_fact(facts.Backups, backup_dir=settings.backups_dir, wal_dir=settings.wal_dir)
    if settings.restore_time:
        return for_stack(settings, record, point_in_time(settings, found, record))
    backup = next((b for b in found["backups"] if b["name"] == settings.restore_backup), {"revision": []})
    return for_stack(settings, record, backup)


def point_in_time(settings: Settings, found: dict, record: dict) -> dict:
    """What the plan of a restore to ``restore_time`` takes the database to be then: its
    revision (from the server's backups and migration records, else the running
    release's, said so), after checking the time against the recoverable window."""
    latest = settings.restore_time == "latest"
    when = utc_time(settings.restore_time)
    if settings.restore_from == "local":
        windows = [w for w in found.get("point_in_time") or [] if w.get("recoverable")]
        live = windows[0] if windows else None
        if live is None:
            raise PreflightError(f"restore refused for {host.name}: the server's WAL archive has no recoverable "
                                 "window yet (no base backup, or nothing archived); nothing was changed")
        if latest:
            when = utc_time(live["latest"])
        elif not live["earliest"] <= settings.restore_time <= live["latest"]:
            raise PreflightError(
                f"restore refused for {host.name}: {settings.restore_time} is outside the recoverable window "
                f"({live['earliest']} to {live['latest']}); nothing was changed")
    migrations = host.get_fact(facts.MigrationHistory, state_dir=settings.paths.state_dir)
    if when is None:  # latest, from the off-server copy: nothing here tells when that is
        revision, source = None, "the off-server copy's newest archive is not known before it is fetched"
    else:
        revision, source = revision_at(found.get("backups") or [], migrations, when)
    if revision is None and "during the migration" in source:
        raise PreflightError(f"restore refused for {host.name}: {source}; nothing was changed")
    if revision is None:
        revision = list(record.get("migration_heads") or [])
        source = f"assumed to be the running release's ({source}); the restore stops before any change if not"
    host.log(f"Plan: the database at {settings.restore_time} is at revision {', '.join(revision) or 'none'} "
             f"({source})")
    return {"revision": revision}
