"""Step 3: the plan, made before anything changes (tasks.resolve reads what it needs; tasks.plan
is the value), said at the default verbosity; on a first deploy, the rest of it once the
run has installed what it needs (step 7)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from tasks import facts, resolve
from tasks.operations.plan import settled
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
    backups = host.get_fact(facts.Backups, backup_dir=settings.backups_dir)["backups"]
    backup = next((b for b in backups if b["name"] == settings.restore_backup), {"revision": []})
    return for_stack(settings, record, backup)
