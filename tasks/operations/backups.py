"""Operations of the backups: the off-server copy's password and repository, and the
backup taken before a migration."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import HiddenValue, StringCommand, operation
from pyinfra.facts.files import Sha256File

from tasks import facts, layout
from tasks.commands import program, quote
from tasks.digest import sha256
from tasks.operations.files import private_file
from tasks.plan import Migration

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
def offsite_repository(paths: layout.Paths, repository: str, password_changed=lambda: False):
    """
    Ensure the off-server copy's restic repository exists and opens with the server's
    password: created the first time, checked again when its address or the password
    changed; otherwise left alone (no connection on every deploy).

    + paths: the server's app and state directories (the record of the repository set up)
    + repository: the restic repository (``sftp:user@host:/path``)
    + password_changed: a function telling whether this run gave the server a new password
    """
    recorded = host.get_fact(facts.TextFile, path=paths.offsite_record)
    if recorded == repository and not password_changed():
        host.noop(f"the off-server repository {repository} is set up")
        return
    yield StringCommand(program("srq-hpn-offsite", "init"))


BACKUP_FAILED_HINT = (
    "hint: the backup before migrating failed (its words above): nothing was migrated and nothing restarted; "
    "the running version keeps serving. Fix the cause (often the free space of the backup directory) and deploy again."
)


def before_migrating(migration: Migration):
    """The commands that back the database up before a migration (for
    ``tasks.operations.database.migrated``), labelled after its revisions."""
    label = migration.label
    before = ", ".join(migration.current) if migration.current is not None else "its revision"
    after = ", ".join(migration.heads) if migration.heads is not None else "the release's heads"
    host.log(f"Backing up the database before migrating {before} -> {after} ({label})")
    yield StringCommand(
        program("srq-hpn-backup", "--label", label, "--offsite-best-effort")
        + f" || {{ echo {quote(BACKUP_FAILED_HINT)} >&2; exit 1; }}"
    )
