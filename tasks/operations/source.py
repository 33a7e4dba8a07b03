"""Operations that put the app's repository in the app directory."""

from __future__ import annotations

from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation

from tasks import facts
from tasks.commands import program, quote, shell
from tasks.layout import Paths
from tasks.sourcetree import Upload


@operation()
def uploaded_source(paths: Paths, upload: Upload):
    """
    Ensure the app directory holds exactly the files of a local checkout.

    + paths: the server's app and state directories
    + upload: the checkout's files, manifest and archive (``tasks.sourcetree.Upload``)

    What is on disk decides, not a record: every shipped file is checked against the
    manifest. The archive is unpacked and verified beside the live tree before a live
    file changes (``srq-hpn-source upload``); the app directory's other files
    (``.env.production``, an operator's own) are left alone.
    """
    state = host.get_fact(
        facts.UploadedSource, manifest_sha=upload.manifest_sha, app_dir=paths.app_dir, state_dir=paths.state_dir
    )
    if state == "current":
        host.noop(f"{paths.app_dir} holds source {upload.revision}")
        return
    host.log(f"Shipping source {upload.revision} ({len(upload.paths)} files): {state.removeprefix('stale: ')}")
    yield shell("mkdir", "-p", paths.incoming)
    yield FileUploadCommand(BytesIO(upload.archive), f"{paths.incoming}/source.tar.gz",
                            remote_temp_filename=host.get_temp_filename(f"{upload.revision}.tar.gz"))
    yield FileUploadCommand(BytesIO(upload.manifest.encode()), f"{paths.incoming}/source.manifest",
                            remote_temp_filename=host.get_temp_filename(f"{upload.revision}.manifest"))
    yield StringCommand(program("srq-hpn-source", "upload"))


@operation()
def git_source(paths: Paths, repo: str, branch: str, ssh_command: str = ""):
    """
    Ensure the app directory is a clean checkout of the newest commit of a branch.

    + paths: the server's app and state directories
    + repo: repository URL
    + branch: branch to deploy (checked out as that branch, so ``git pull`` works)
    + ssh_command: GIT_SSH_COMMAND for a deploy key, if any

    Clean means no tracked file changed; untracked files (``.env.production``, which
    the checkout's git excludes, an operator's own) are left alone.
    """
    state = host.get_fact(facts.GitCheckout, repo=repo, branch=branch, app_dir=paths.app_dir, ssh_command=ssh_command)
    if state["remote"] and state["head"] == state["remote"] and state["branch"] == branch and not state["dirty"]:
        host.noop(f"{paths.app_dir} is {branch} at {state['remote'][:12]}")
        return
    env = f"GIT_SSH_COMMAND={quote(ssh_command)} " if ssh_command else ""
    yield StringCommand(f"mkdir -p {quote(paths.incoming)} && {env}{program('srq-hpn-source', 'git', repo, branch)}")
    if ssh_command:
        # The operator's own `git pull` on the server uses the deploy key too.
        yield shell("git", "-C", paths.app_dir, "config", "core.sshCommand", ssh_command)
