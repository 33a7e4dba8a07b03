"""Operations of the backups: the off-server copy's password and repository (the backup
taken before a migration runs with the release's images: tasks.operations.release)."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import HiddenValue, StringCommand, operation
from pyinfra.facts.files import Sha256File

from tasks import facts, layout
from tasks.commands import program
from tasks.digest import sha256
from tasks.operations.files import private_file
from tasks.remote import shown

STAGED_PASSWORD = f"{layout.OFFSITE_PASSWORD_FILE}.new"


@operation()
def offsite_password(password: HiddenValue | None):
    """
    Ensure the server holds the off-server copy's repository password (0600, never
    shown). A new one replaces the server's only if it opens the repository (or there
    is none yet): a mistyped RESTIC_PASSWORD never locks the server out of its copy.

    + password: RESTIC_PASSWORD from the operator's environment, or None to keep the server's
    """
    if password is None:
        host.noop("the server keeps its RESTIC_PASSWORD")
        return
    if host.get_fact(Sha256File, path=layout.OFFSITE_PASSWORD_FILE) == sha256(password.unmask().encode()):
        host.noop("the server holds this RESTIC_PASSWORD")
        return
    yield from private_file._inner(path=STAGED_PASSWORD, content=password, preview="RESTIC_PASSWORD=********")
    yield StringCommand(program("srq-hpn-offsite", "adopt-password", STAGED_PASSWORD))


@operation()
def offsite_repository(paths: layout.Paths, repository: str, password_changed: bool = False):
    """
    Ensure the off-server copy's restic repository exists and opens with the server's
    password: created the first time, checked again when its address or the password
    changed; otherwise left alone (no connection on every deploy).

    + paths: the server's app and state directories (the record of the repository set up)
    + repository: the restic repository (``sftp:user@host:/path``)
    + password_changed: whether this run gives the server a new password (known from the plan)
    """
    recorded = host.get_fact(facts.TextFile, path=paths.offsite_record)
    if recorded == repository and not password_changed:
        host.noop(f"the off-server repository {repository} is set up")
        return
    yield StringCommand(program("srq-hpn-offsite", "init"))


@operation()
def wal_archive_ready(plan):
    """
    Ensure the database's WAL archive works and has a base backup of its cluster, as the
    plan decided (``plan.wal``): the archive directory given to the database's postgres
    user (``srq-hpn-wal setup``), then a first base backup (``srq-hpn-wal base``), from
    which the database can be recovered to any later time. Their report is shown.

    + plan: this run's plan (tasks.plan.Plan)
    """
    if not plan.wal:
        host.noop("the WAL archive works and has a base backup of this cluster")
        return
    for step in ("setup", "base"):
        if step in plan.wal:
            yield from shown(program("srq-hpn-wal", step), explain=True)
