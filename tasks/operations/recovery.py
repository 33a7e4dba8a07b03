"""Operations of the restore drill and the restore: each runs its server program and
shows what it reports (the drill's table, the restore's steps)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import StringCommand, operation

from tasks import facts
from tasks.commands import program
from tasks.remote import fail, shown


@operation(is_idempotent=False)
def drilled(backup: str, source: str, when: str = ""):
    """
    Ensure a backup restores: the restore drill (srq-hpn-drill) restores it into a
    scratch database container beside the live one and compares it with its manifest;
    its table is shown, and its result recorded on the server. Fails naming the cause.

    + backup: the backup's name, or "" for the newest
    + source: "local" (the server's backup directory) or "offsite" (the restic copy)
    + when: instead of a backup, a point in time (UTC) recovered from the WAL archive
    """
    args = ["--from", source] + (["--time", when] if when else [backup] if backup else [])
    yield from shown(program("srq-hpn-drill", *args))


@operation(is_idempotent=False)
def restored(backup: str, backup_dir: str | None = None):
    """
    Ensure the live database holds backup ``backup``: restored beside the live one,
    a safety backup of the live one taken once the app is stopped (Caddy answers a
    maintenance page meanwhile), then swapped in. The app stays stopped for the steps
    after (app role, migrations, start). The Docker volume is never removed.

    + backup: the backup's name (``pyinfra inventory.py fact tasks.facts.Backups``)
    + backup_dir: where the server keeps its backups (default: as its deploy.env says)
    """
    known = {b["name"]: b for b in host.get_fact(facts.Backups, backup_dir=backup_dir)["backups"]}
    if backup not in known:
        yield from fail(f"There is no backup {backup} on this server; nothing was changed.\n"
                        "hint: pyinfra inventory.py fact tasks.facts.Backups lists them")
        return
    yield from shown(program("srq-hpn-restore", backup))


@operation(is_idempotent=False)
def restored_to_time(when: str, revision: list[str], source: str = "local"):
    """
    Ensure the live database holds what it held at ``when``: the WAL archive recovered to
    that time in a scratch container and written as a backup (label pitr-...), which
    then replaces the live one as ``restored`` does (safety backup first, maintenance
    page, the app stopped), only if its revision is the plan's.

    + when: the point in time (UTC, 2026-03-01T14:05:00Z)
    + revision: the alembic revision(s) the plan takes the database to have had then
    + source: "local" (the server's WAL archive) or "offsite" (its restic copy)
    """
    args = ["restore", when, "--expect-revision", ",".join(revision) or "none"]
    if source == "offsite":
        args += ["--from", "offsite"]
    yield from shown(program("srq-hpn-wal", *args), explain=True)


@operation(is_idempotent=False)
def maintenance_page(on: bool):
    """
    Ensure Caddy's maintenance page (503 with Retry-After, for every request) is on
    or off. Caddy is neither restarted nor reloaded.

    + on: whether the page is shown
    """
    yield StringCommand(program("srq-hpn-maintenance", "on" if on else "off"))
