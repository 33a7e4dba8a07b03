"""Operations on files that pyinfra's files.put does not cover: secrets that must never
be shown, and files that must keep their inode (bind-mounted into a container)."""

from __future__ import annotations

from io import BytesIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import File, Sha256File

from tasks import facts
from tasks.digest import sha256


def _upload_name(path: str) -> str:
    """With sudo, pyinfra uploads to a temporary file first: keep it in the SSH user's
    home directory (a relative path), not in the world-readable /tmp."""
    return f".srq-hpn-upload-{sha256(path)[:12]}"


@operation()
def private_file(path: str, content, preview: str = "", mode: str = "600", user="root", group="root"):
    """
    Ensure a file holding secrets has the given content, without ever showing it.

    + path: remote path of the file
    + content: a ``HiddenValue`` with the file's text
    + preview: text shown instead of the content with ``--diff`` (secrets masked)
    + mode/user/group: permissions; the file is created with them before any byte is written

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
            yield StringCommand("chown", f"{user}:{group}", path)
            yield StringCommand("chmod", mode, path)
        else:
            host.noop(f"{path} is up to date")
        return

    if host.state.config.DIFF:
        host.log(f"Will {'modify' if remote else 'create'} {path} (secrets masked):", logger.info)
        for line in preview.splitlines():
            logger.info("  %s", line)

    if not remote:
        # Created empty with its final mode first: the content never sits in a readable file.
        yield StringCommand("install", "-m", mode, "-o", user, "-g", group, "/dev/null", path)
    yield FileUploadCommand(BytesIO(data), path, remote_temp_filename=_upload_name(path))
    yield StringCommand("chown", f"{user}:{group}", path)
    yield StringCommand("chmod", mode, path)


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
            yield StringCommand("chmod", mode, path)
        else:
            host.noop(f"{path} is up to date")
        return
    staged = f"{path}.srq-hpn-new"
    yield FileUploadCommand(BytesIO(data), staged, remote_temp_filename=_upload_name(staged))
    yield StringCommand(f"cat {staged} > {path} && rm -f {staged} && chmod {mode} {path}")


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
            yield StringCommand("mkdir", "-p", "-m", mode, path)
        elif state[path]["mode"] != mode:
            yield StringCommand("chmod", mode, path)
    changed = []
    for path, (text, mode) in sorted(files.items()):
        data = text.encode()
        current = state.get(path)
        if current is None or current.get("sha256") != sha256(data):
            changed.append(path)
            yield FileUploadCommand(BytesIO(data), path, remote_temp_filename=_upload_name(path))
            yield StringCommand("chmod", mode, path)
        elif current["mode"] != mode:
            yield StringCommand("chmod", mode, path)
    if changed:
        host.log(f"Updated: {', '.join(changed)}")
    elif all(path in state for path in directories):
        host.noop(f"{len(files)} files are current")
