"""Step 5: the app's repository in the app directory, as `git clone <repo> /opt/srq-hpn`
puts it: an uploaded local checkout, or a git branch (deploy key supported)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import apt, files

from tasks import layout
from tasks.hostkeys import known_hosts_line
from tasks.operations.files import private_file
from tasks.operations.source import git_source, uploaded_source
from tasks.preflight import Deployment
from tasks.settings import Settings
from tasks.validation import git_ssh_host


@deploy("Ship the app's repository")
def install(deployment: Deployment):
    settings, upload = deployment.settings, deployment.upload
    paths = settings.paths
    if upload is not None:
        uploaded_source(
            name=f"Ensure {paths.app_dir} holds the files of {settings.app_local_path} (release {upload.revision})",
            paths=paths,
            upload=upload,
        )
        return

    apt.packages(name="Ensure git is installed", packages=["git", "openssh-client"], no_recommends=True)
    ssh_command = git_ssh(settings)
    if settings.app_git_deploy_key:
        files.directory(name="Ensure /root/.ssh exists", path="/root/.ssh", mode="700")
        private_file(
            name=f"Ensure the deploy key is installed at {layout.GIT_DEPLOY_KEY} (0600)",
            path=layout.GIT_DEPLOY_KEY,
            content=HiddenValue(Path(settings.app_git_deploy_key).expanduser().read_text()),
            preview="(private key)",
        )
    git_host = git_ssh_host(settings.app_git_repo)
    if git_host and settings.app_git_host_key:
        files.directory(name=f"Ensure {layout.CONFIG_DIR} exists", path=layout.CONFIG_DIR, mode="755")
        files.put(
            name=f"Ensure {layout.GIT_KNOWN_HOSTS} holds the git server's key ({git_host[0]})",
            src=StringIO(known_hosts_line(settings.app_git_host_key, *git_host)),
            dest=layout.GIT_KNOWN_HOSTS,
            mode="644",
        )
    elif git_host:
        host.log_styled(f"The git server's key ({git_host[0]}) is trusted at the first connection "
                        "(srq_hpn_app_git_accept_new_host_key); set srq_hpn_app_git_host_key to pin it",
                        fg="yellow", log_func=logger.warning)
    git_source(
        name=f"Ensure {paths.app_dir} is {settings.app_git_repo} at the newest {settings.app_git_branch}",
        paths=paths,
        repo=settings.app_git_repo,
        branch=settings.app_git_branch,
        ssh_command=ssh_command,
    )


def git_ssh(settings: Settings) -> str:
    """GIT_SSH_COMMAND for the app's repository: its deploy key, and the git server's key
    checked (accepted at the first connection only when the operator said so); "" when
    the repository is not reached over SSH and no deploy key is given (pure; unit-tested)."""
    if not git_ssh_host(settings.app_git_repo) and not settings.app_git_deploy_key:
        return ""
    words = ["ssh"]
    if settings.app_git_deploy_key:
        words += ["-i", layout.GIT_DEPLOY_KEY, "-o", "IdentitiesOnly=yes"]
    trust = "accept-new" if settings.app_git_accept_new_host_key and not settings.app_git_host_key else "yes"
    words += ["-o", f"UserKnownHostsFile={layout.GIT_KNOWN_HOSTS}", "-o", f"StrictHostKeyChecking={trust}"]
    return " ".join(words)
