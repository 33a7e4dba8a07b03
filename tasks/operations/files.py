"""Operations on files that pyinfra's files.put does not cover: secrets that must never
be shown or sit in a readable file, files that must keep their inode (bind-mounted
into a container), and programs replaced whole while they may be running."""

from __future__ import annotations

import shlex
from io import BytesIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, FunctionCommand, StringCommand, operation
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.facts.files import File, Sha256File

from tasks import facts
from tasks.commands import quote, shell
from tasks.digest import sha256

# A staged file is written beside its target under this suffix, then renamed into place.
STAGED_SUFFIX = ".srq-hpn-new"
# Private staging directories of secret uploads (the SSH user's own, 0700), in /tmp.
STAGING_PREFIX = ".srq-hpn-stage-"
# What escalates privileges for a command: a staging directory is the SSH user's own.
_ESCALATION = ("_sudo", "_sudo_user", "_su_user", "_doas", "_doas_user", "_dzdo", "_dzdo_user")


def _upload_name(path: str) -> str:
    """With sudo, pyinfra uploads to a temporary file first: keep it in the SSH user's
    home directory (a relative path), not in the world-readable /tmp."""
    return f".srq-hpn-upload-{sha256(path)[:12]}"


def _connector_arguments(state, target, escalate: bool) -> dict:
    global_arguments, _ = pop_global_arguments(state, target, {})
    arguments = {k: global_arguments[k] for k in CONNECTOR_ARGUMENT_KEYS if k in global_arguments}
    if not escalate:
        for key in _ESCALATION:
            arguments.pop(key, None)
    return arguments


def install_staged(staged: str, path: str, mode: str, user: str, group: str) -> str:
    """The shell command that puts a staged file in place: copied beside the target with
    its owner and mode before it is renamed over it (pure; unit-tested). Under umask 077
    the copy is never readable by others, not even for a moment."""
    new = path + STAGED_SUFFIX
    return (f"umask 077 && cp {shlex.quote(staged)} {shlex.quote(new)} && chown {shlex.quote(f'{user}:{group}')} "
            f"{shlex.quote(new)} && chmod {shlex.quote(mode)} {shlex.quote(new)} && mv -f {shlex.quote(new)} "
            f"{shlex.quote(path)}")


def private_upload(data: bytes, path: str, mode: str, user: str, group: str) -> FunctionCommand:
    """A command that writes a secret file on the server without it ever sitting in a file
    another user can read: uploaded into a fresh directory of the SSH user's own (mktemp
    -d, 0700), copied beside the target under umask 077 with its owner and mode, renamed
    into place; the staging directory is removed whatever happens (and, at the next
    upload, one that a killed run left is removed too)."""

    def upload(state, host):  # pyinfra passes both, by these names
        as_user = _connector_arguments(state, host, escalate=False)
        as_root = _connector_arguments(state, host, escalate=True)
        quiet = {"print_output": False, "print_input": False}
        ok, output = host.run_shell_command(StringCommand(
            f"find /tmp -maxdepth 1 -name '{STAGING_PREFIX}*' -user \"$(id -u)\" -mmin +60 -exec rm -rf {{}} + "
            f"2>/dev/null; mktemp -d /tmp/{STAGING_PREFIX}XXXXXXXX"), **quiet, **as_user)
        if not ok or not output.stdout_lines:
            host.log_styled(f"could not make a private staging directory for {path}: "
                            + " ".join(output.stderr_lines[-3:]), fg="red", log_func=logger.error)
            return False
        staging = output.stdout_lines[-1].strip()
        try:
            staged = f"{staging}/content"
            if not host.put_file(BytesIO(data), staged, **quiet, **as_user):
                return False
            ok, output = host.run_shell_command(StringCommand(install_staged(staged, path, mode, user, group)),
                                                **quiet, **as_root)
            if not ok:
                host.log_styled(f"could not put {path} in place: " + " ".join(output.stderr_lines[-3:]),
                                fg="red", log_func=logger.error)
            return ok
        finally:
            host.run_shell_command(shell("rm", "-rf", staging), **quiet, **as_user)

    return FunctionCommand(upload, (), {})


@operation()
def private_file(path: str, content, preview: str = "", mode: str = "600", user="root", group="root"):
    """
    Ensure a file holding secrets has the given content, without ever showing it.

    + path: remote path of the file
    + content: a ``HiddenValue`` with the file's text
    + preview: text shown instead of the content with ``--diff`` (secrets masked)
    + mode/user/group: permissions; the file has them before any byte of its content is
      written (staged in a private directory, renamed into place: never readable by others)

    Example:

    .. code:: python

        private_file(
            name="Ensure /opt/srq-hpn/.env.production holds the settings (0600)",
            path="/opt/srq-hpn/.env.production",
            content=HiddenValue(text),
            preview=masked_text,
        )
    """
    data = content.unmask().encode()
    remote = host.get_fact(File, path=path)
    if remote and host.get_fact(Sha256File, path=path) == sha256(data):
        if remote["mode"] != int(mode) or remote["user"] != user or remote["group"] != group:
            yield shell("chown", f"{user}:{group}", path)
            yield shell("chmod", mode, path)
        else:
            host.noop(f"{path} is up to date")
        return

    if host.state.config.DIFF:
        host.log(f"Will {'modify' if remote else 'create'} {path} (secrets masked):", logger.info)
        for line in preview.splitlines():
            logger.info("  %s", line)

    yield private_upload(data, path, mode, user, group)


@operation()
def file_in_place(path: str, content: str, mode: str = "644"):
    """
    Ensure a file has the given content, rewriting it in place so that a container
    that bind-mounts this very file sees the change (a replaced file would leave the
    container on the old one).

    + path: remote path of the file (its directory must exist)
    + content: the file's text
    + mode: the file's mode
    """
    data = content.encode()
    remote = host.get_fact(File, path=path)
    if remote and host.get_fact(Sha256File, path=path) == sha256(data):
        if remote["mode"] != int(mode):
            yield shell("chmod", mode, path)
        else:
            host.noop(f"{path} is up to date")
        return
    staged = path + STAGED_SUFFIX
    yield FileUploadCommand(BytesIO(data), staged, remote_temp_filename=_upload_name(staged))
    yield StringCommand(f"cat {quote(staged)} > {quote(path)} && rm -f {quote(staged)} && chmod {quote(mode)} "
                        f"{quote(path)}")


@operation()
def files_current(files: dict, directories: dict):
    """
    Ensure several directories and small files, checked in one round trip: the many
    small files of one concern (the deploy's server programs) cost one fact, not two
    per file.

    + files: ``{path: (text, mode)}``
    + directories: ``{path: mode}``, created first when missing
    """
    state = host.get_fact(facts.FileStates, paths=tuple(sorted(directories)) + tuple(sorted(files)))
    for path, mode in sorted(directories.items()):
        if path not in state:
            yield shell("mkdir", "-p", "-m", mode, path)
        elif state[path]["mode"] != mode:
            yield shell("chmod", mode, path)
    changed = []
    for path, (text, mode) in sorted(files.items()):
        data = text.encode()
        current = state.get(path)
        if current is None or current.get("sha256") != sha256(data):
            changed.append(path)
            # Written beside, then renamed: bash reads a running script as it goes, so a
            # program that runs during the deploy (the monitor, a backup) must never see
            # its file rewritten in place; it keeps reading the old one to its end.
            staged = path + STAGED_SUFFIX
            yield FileUploadCommand(BytesIO(data), staged, remote_temp_filename=_upload_name(staged))
            yield shell("chmod", mode, staged)
            yield shell("mv", "-f", staged, path)
        elif current["mode"] != mode:
            yield shell("chmod", mode, path)
    if changed:
        host.log(f"Updated: {', '.join(changed)}")
    elif all(path in state for path in directories):
        host.noop(f"{len(files)} files are current")
