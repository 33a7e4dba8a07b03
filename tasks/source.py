"""Step 5: the app's repository in the app directory, as `git clone <repo> /opt/srq-hpn`
puts it: an uploaded local checkout, or a git branch (deploy key supported)."""

from __future__ import annotations

from pathlib import Path

from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import apt, files

from tasks.operations.files import private_file
from tasks.operations.source import git_source, uploaded_source
from tasks.preflight import Deployment
from tasks.release import ReleaseRef
from tasks.runtime import learnt

DEPLOY_KEY = "/root/.ssh/srq-hpn-deploy-key"


@deploy("Ship the app's repository")
def install(deployment: Deployment) -> ReleaseRef:
    settings, upload = deployment.settings, deployment.upload
    paths = settings.paths
    if upload is not None:
        learnt().migrations = upload.migrations
        uploaded_source(
            name=f"Ensure {paths.app_dir} holds the files of {settings.app_local_path}",
            paths=paths,
            upload=upload,
        )
        return ReleaseRef(paths.app_dir, upload.manifest_sha)

    apt.packages(name="Ensure git is installed", packages=["git", "openssh-client"], no_recommends=True)
    ssh_command = ""
    if settings.app_git_deploy_key:
        files.directory(name="Ensure /root/.ssh exists", path="/root/.ssh", mode="700")
        private_file(
            name=f"Ensure the deploy key is installed at {DEPLOY_KEY} (0600)",
            path=DEPLOY_KEY,
            content=HiddenValue(Path(settings.app_git_deploy_key).expanduser().read_text()),
            preview="(private key)",
        )
        ssh_command = f"ssh -i {DEPLOY_KEY} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
    git_source(
        name=f"Ensure {paths.app_dir} is {settings.app_git_repo} at the newest {settings.app_git_branch}",
        paths=paths,
        repo=settings.app_git_repo,
        branch=settings.app_git_branch,
        ssh_command=ssh_command,
    )
    return ReleaseRef(paths.app_dir)
